"""Event-driven secret rotation for Azure Key Vault.

The path of one event, one module per hop:
`events` (parse) -> `intake` (validate, drop stale, enqueue) -> `worker` -> `engine` (the protocol)
-> a rotator from `registry` (provider side only) -> `keyvault_store` (new version, read-back)
-> `outcomes` (one log line per rotation).
Nothing in this package imports `azure.functions`: `function_app.py` adapts triggers to it.
"""
