"""Benchmarks of the modelreg operator against the local control plane (issue 6).

Run ``python -m benchmarks.bench --quick`` (or ``--full``); see ``benchmarks/bench.py``. One
phase per module in ``benchmarks/phases/``; sizes in ``sizes.py``; the report in ``report.py``.
"""
