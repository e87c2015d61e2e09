"""Benchmarks: each runs alone (`python -m bench.NAME [--quick]`); `make bench` runs them all."""
