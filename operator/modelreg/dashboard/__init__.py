"""The read-only web dashboard (`modelreg dashboard`)."""
