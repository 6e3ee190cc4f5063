"""Benchmarks on the local stack (`bench/run.sh`): figures, never tests."""
