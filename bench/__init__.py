"""Benchmarks: scripts that print numbers (`make bench`). Tests never assert timings."""
