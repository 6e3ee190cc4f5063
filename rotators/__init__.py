"""Built-in rotators: provider-side code only (no Key Vault, no events, no protocol order).

Each module imports its provider's SDK lazily, when the registry first loads it.
"""
