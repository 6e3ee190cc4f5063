"""Settings: the one place that reads the process environment (Function App settings).

Every other module receives a `Settings` object, so the engine never touches `os.environ`
and tests build settings from plain dictionaries. `APP_SETTING_NAMES` is the contract with
`infra/`: a test checks that the Bicep app settings and this list agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigurationError

ALLOWED_VAULTS = "ROTATION_ALLOWED_VAULTS"
ALLOWED_SCOPES = "ROTATION_ALLOWED_SCOPES"
QUEUE_NAME = "ROTATION_QUEUE_NAME"
LOCK_CONTAINER = "ROTATION_LOCK_CONTAINER"
OUTCOME_TOPIC_ENDPOINT = "ROTATION_OUTCOME_TOPIC_ENDPOINT"
SWEEP_SCHEDULE = "ROTATION_SWEEP_SCHEDULE"
STUCK_AFTER_MINUTES = "ROTATION_STUCK_AFTER_MINUTES"
RETRY_BUDGET_SECONDS = "ROTATION_RETRY_BUDGET_SECONDS"
KEYVAULT_API_VERSION = "KEYVAULT_API_VERSION"
# This worker process's share of Key Vault's 300 secret CREATEs per vault per 10 s (see `throttle`).
KEYVAULT_CREATES_PER_10S = "ROTATION_KEYVAULT_CREATES_PER_10S"
# Plugin rotators (entry-point group `secret_rotation.rotators`) the app may load, by rotator name.
ALLOWED_PLUGINS = "ROTATION_ALLOWED_PLUGINS"
# Optional: a module of the deployment's own code whose `register_rotators(registry)` adds rotators.
REGISTRATION_MODULE = "ROTATION_REGISTRATION_MODULE"
# Local stack only: the emulator's self-signed CA and its non-Azure challenge resource.
KEYVAULT_CA_BUNDLE = "KEYVAULT_CA_BUNDLE"
KEYVAULT_VERIFY_CHALLENGE_RESOURCE = "KEYVAULT_VERIFY_CHALLENGE_RESOURCE"
# Host storage, as the Functions host reads it: a connection string locally, identity-based in Azure.
STORAGE_CONNECTION = "AzureWebJobsStorage"
STORAGE_QUEUE_SERVICE_URI = "AzureWebJobsStorage__queueServiceUri"
STORAGE_BLOB_SERVICE_URI = "AzureWebJobsStorage__blobServiceUri"
STORAGE_CLIENT_ID = "AzureWebJobsStorage__clientId"
# Local stack only: where the management planes are (the rotators' ProviderContext); Azure's public
# cloud when unset.
ARM_ENDPOINT = "ROTATION_ARM_ENDPOINT"
GRAPH_ENDPOINT = "ROTATION_GRAPH_ENDPOINT"
AUTHORITY_HOST = "ROTATION_AUTHORITY_HOST"
DATABASE_PORT = "ROTATION_DATABASE_PORT"
SQL_LOGIN_CHECK = "ROTATION_SQL_LOGIN_CHECK"
# Read by azure-identity itself: the client id of the user-assigned managed identity.
MANAGED_IDENTITY_CLIENT_ID = "AZURE_CLIENT_ID"

#: Settings a deployment in Azure must provide (local-only settings are left out).
APP_SETTING_NAMES: tuple[str, ...] = (
    ALLOWED_VAULTS,
    ALLOWED_SCOPES,
    QUEUE_NAME,
    LOCK_CONTAINER,
    OUTCOME_TOPIC_ENDPOINT,
    SWEEP_SCHEDULE,
    STUCK_AFTER_MINUTES,
    RETRY_BUDGET_SECONDS,
    ALLOWED_PLUGINS,
    REGISTRATION_MODULE,
    KEYVAULT_CREATES_PER_10S,
    KEYVAULT_API_VERSION,
    STORAGE_QUEUE_SERVICE_URI,
    STORAGE_BLOB_SERVICE_URI,
    STORAGE_CLIENT_ID,
    MANAGED_IDENTITY_CLIENT_ID,
)

DEFAULT_QUEUE_NAME = "secret-rotation"
DEFAULT_LOCK_CONTAINER = "rotation-locks"
# Every six hours: events are hints, the sweep is the guarantee.
DEFAULT_SWEEP_SCHEDULE = "0 0 */6 * * *"
DEFAULT_STUCK_AFTER_MINUTES = 60
# Well inside the 10-minute function timeout of host.json, leaving room for several steps.
DEFAULT_RETRY_BUDGET_SECONDS = 60.0
# 7.6 is the newest version both Azure Key Vault and the local emulators accept.
DEFAULT_KEYVAULT_API_VERSION = "7.6"
# The whole documented per-vault limit; a scaled-out app sets its share (docs/deployment.md).
DEFAULT_KEYVAULT_CREATES_PER_10S = 300


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"setting {name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"setting {name} must be positive, got {raw!r}")
    return value


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ConfigurationError(f"setting {name} must be true or false, got {value!r}")


@dataclass(frozen=True)
class StorageSettings:
    """Where the rotation queue lives: a connection string, or a service URI used with the identity."""

    connection_string: str | None
    queue_service_uri: str | None
    blob_service_uri: str | None
    client_id: str | None


@dataclass(frozen=True)
class Settings:
    allowed_vaults: tuple[str, ...]
    allowed_scopes: tuple[str, ...]
    queue_name: str = DEFAULT_QUEUE_NAME
    lock_container: str = DEFAULT_LOCK_CONTAINER
    outcome_topic_endpoint: str | None = None
    stuck_after_minutes: float = DEFAULT_STUCK_AFTER_MINUTES
    retry_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS
    keyvault_api_version: str = DEFAULT_KEYVAULT_API_VERSION
    keyvault_creates_per_10s: int = DEFAULT_KEYVAULT_CREATES_PER_10S
    keyvault_ca_bundle: str | None = None
    verify_challenge_resource: bool = True
    storage: StorageSettings = StorageSettings(None, None, None, None)
    managed_identity_client_id: str | None = None
    arm_endpoint: str | None = None
    graph_endpoint: str | None = None
    authority_host: str | None = None
    database_port: int | None = None
    sql_login_check: str | None = None
    allowed_plugins: tuple[str, ...] = ()
    registration_module: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        vaults = _split(env.get(ALLOWED_VAULTS, ""))
        if not vaults:
            raise ConfigurationError(f"setting {ALLOWED_VAULTS} must list at least one vault URL")
        return cls(
            allowed_vaults=tuple(v.rstrip("/").lower() for v in vaults),
            allowed_scopes=_split(env.get(ALLOWED_SCOPES, "")),
            queue_name=env.get(QUEUE_NAME) or DEFAULT_QUEUE_NAME,
            lock_container=env.get(LOCK_CONTAINER) or DEFAULT_LOCK_CONTAINER,
            outcome_topic_endpoint=env.get(OUTCOME_TOPIC_ENDPOINT) or None,
            stuck_after_minutes=_number(env, STUCK_AFTER_MINUTES, DEFAULT_STUCK_AFTER_MINUTES),
            retry_budget_seconds=_number(env, RETRY_BUDGET_SECONDS, DEFAULT_RETRY_BUDGET_SECONDS),
            keyvault_api_version=env.get(KEYVAULT_API_VERSION) or DEFAULT_KEYVAULT_API_VERSION,
            keyvault_creates_per_10s=max(
                1, int(_number(env, KEYVAULT_CREATES_PER_10S, DEFAULT_KEYVAULT_CREATES_PER_10S))
            ),
            keyvault_ca_bundle=env.get(KEYVAULT_CA_BUNDLE) or None,
            verify_challenge_resource=_flag(
                env.get(KEYVAULT_VERIFY_CHALLENGE_RESOURCE, "true"), KEYVAULT_VERIFY_CHALLENGE_RESOURCE
            ),
            storage=StorageSettings(
                connection_string=env.get(STORAGE_CONNECTION) or None,
                queue_service_uri=env.get(STORAGE_QUEUE_SERVICE_URI) or None,
                blob_service_uri=env.get(STORAGE_BLOB_SERVICE_URI) or None,
                client_id=env.get(STORAGE_CLIENT_ID) or None,
            ),
            managed_identity_client_id=env.get(MANAGED_IDENTITY_CLIENT_ID) or None,
            arm_endpoint=env.get(ARM_ENDPOINT) or None,
            graph_endpoint=env.get(GRAPH_ENDPOINT) or None,
            authority_host=env.get(AUTHORITY_HOST) or None,
            database_port=int(_number(env, DATABASE_PORT, 0)) or None,
            sql_login_check=env.get(SQL_LOGIN_CHECK) or None,
            allowed_plugins=_split(env.get(ALLOWED_PLUGINS, "")),
            registration_module=env.get(REGISTRATION_MODULE, "").strip() or None,
        )
