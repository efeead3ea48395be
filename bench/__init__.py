"""Benchmarks: each prints JSON lines; run one with `.venv/bin/python -m bench.NAME`."""
