"""Benchmarks: speed belongs here, not in the tests (which never assert timings)."""
