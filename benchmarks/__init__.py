"""Benchmarks of the modelreg operator against the local control plane (issue 6).

Run ``python -m benchmarks.bench --quick`` (or ``--full``); see ``benchmarks/bench.py``.
"""
