"""Integration tests that need the local stack started by `scripts/stack.py up`."""
