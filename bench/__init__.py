"""Benchmarks against the plan's baselines; results land in bench/RESULTS.md. Timings never gate tests."""
