"""The operator CLI, `secret-rotation` (console script; click + rich, installed with the `cli` extra).

A thin layer: `app` parses commands and renders, `connect` builds the service's wiring with the operator's
credential, and the work itself is in `secret_rotation.operations` and the engine. Never imported by
`function_app.py`, so click and rich stay off the Functions cold-start path.
"""
