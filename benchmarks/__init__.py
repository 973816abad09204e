"""Reproducible provguard benchmarks (run as python -m benchmarks.<name>)."""
