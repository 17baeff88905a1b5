"""Benchmarks: each script prints its figures; nothing here is asserted."""
