"""Benchmarks: scripts that print figures, run on demand (never in the test suite)."""
