"""Operator operations: plan, status, emergency rotation and rollback, on the engine and its ports.

They sit beside the triggers, not on the event path: the CLI (`secret_rotation.cli`) calls them with parts
from `composition.Wiring`. Nothing here imports click or prints; each returns data the CLI renders.
"""
