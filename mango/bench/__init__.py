"""Benchmarks: `python -m mango.bench NAME [options]`; timings live here, never in tests."""
