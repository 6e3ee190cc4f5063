"""First hop: turn a delivered Key Vault event into a frozen `SecretEvent`, or say why not.

Two stages: the envelope (Event Grid schema or CloudEvents 1.0, parsed by the azure-eventgrid and
azure-core models) and then the Key Vault payload (`Id`, `VaultName`, `ObjectType`, `ObjectName`,
`Version`). The vault URL, secret name and version come from the payload's `Id`, parsed by the Key Vault
SDK's own identifier class, and every other field that names the vault or the secret must agree with
it (`VaultName`, the envelope's `topic`/`source` and `subject`): an event that disagrees is refused.

Events about pending records (`<name>--rotation-pending`, which carry an expiry) are acknowledged and
ignored: they are the service's own bookkeeping, never a secret to rotate. Jobs the sweep raises carry
no version ("whatever is current", resolved by the worker under the lock).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidEventError
from .pending import PENDING_SUFFIX


class EventSchema(Enum):
    EVENT_GRID = "EventGridSchema"
    CLOUD_EVENTS = "CloudEventSchemaV1_0"


class SecretEventType(Enum):
    NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
    EXPIRED = "Microsoft.KeyVault.SecretExpired"


@dataclass(frozen=True)
class IgnoredEvent:
    """A well-formed event of a type the service does not act on (acknowledged, not retried)."""

    event_id: str
    event_type: str
    reason: str | None = None


@dataclass(frozen=True)
class SecretEvent:
    event_id: str
    event_type: SecretEventType
    schema: EventSchema
    vault_url: str
    secret_name: str
    version: str | None  # None: a sweep job, for whatever version is current when the worker runs
    # Raised by an operator (`on_demand`, the CLI), not by Key Vault: rotate even when not yet due.
    on_demand: bool = False


SWEEP_TOPIC_PREFIX = "/sweep/"
# Marker in the data of jobs an operator raised (service-raised jobs only; see `_parse_secret_payload`).
ON_DEMAND_FIELD = "RotationOnDemand"


def decode_payload(body: bytes | str) -> Mapping[str, Any]:
    """One event from a queue message or a webhook body: raw JSON, or base64-encoded JSON (whether Event
    Grid writes one or the other into a queue is not settled by its documentation: both are accepted)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if not text.lstrip().startswith(("{", "[")):
            text = base64.b64decode(text.strip(), validate=True).decode("utf-8")
        payload = json.loads(text)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidEventError(f"event is neither JSON nor base64-encoded JSON: {exc.__class__.__name__}") from None
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise InvalidEventError("event must be one JSON object")
    return payload


def parse_event(payload: Mapping[str, Any]) -> SecretEvent | IgnoredEvent:
    event_id, event_type, schema, data = _parse_envelope(payload)
    if event_type not in {t.value for t in SecretEventType}:
        return IgnoredEvent(event_id=event_id, event_type=event_type)
    topic = payload.get("source" if schema is EventSchema.CLOUD_EVENTS else "topic")
    event = _parse_secret_payload(
        event_id, SecretEventType(event_type), schema, data, topic=topic, subject=payload.get("subject")
    )
    if event.secret_name.endswith(PENDING_SUFFIX):
        return IgnoredEvent(
            event_id=event_id,
            event_type=event_type,
            reason=f"{event.secret_name} is a pending record (its expiry is bookkeeping), not a secret to rotate",
        )
    return event


def _parse_envelope(payload: Mapping[str, Any]) -> tuple[str, str, EventSchema, Any]:
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridEvent

    try:
        if "specversion" in payload:
            cloud: CloudEvent[Any] = CloudEvent.from_dict(dict(payload))
            if cloud.specversion != "1.0":
                raise InvalidEventError(f"unsupported CloudEvents specversion {cloud.specversion!r}")
            return _required(cloud.id, "id"), cloud.type, EventSchema.CLOUD_EVENTS, cloud.data
        if "eventType" in payload:
            grid = EventGridEvent.from_dict(dict(payload))
            for name, value in (("subject", grid.subject), ("dataVersion", grid.data_version)):
                _required(value, name)
            event_type = _required(grid.event_type, "eventType")
            return _required(grid.id, "id"), event_type, EventSchema.EVENT_GRID, grid.data
    except InvalidEventError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidEventError(f"malformed event envelope: {exc}") from None
    except Exception as exc:  # msrest's DeserializationError has no narrower public base
        raise InvalidEventError(f"malformed event envelope: {exc.__class__.__name__}") from None
    raise InvalidEventError("event is neither Event Grid schema (eventType) nor CloudEvents 1.0 (specversion)")


def _required(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEventError(f"event field {name!r} is missing or not a string")
    return value


def _parse_secret_payload(
    event_id: str, event_type: SecretEventType, schema: EventSchema, data: Any, *, topic: Any, subject: Any
) -> SecretEvent:
    from azure.keyvault.secrets import KeyVaultSecretIdentifier

    if not isinstance(data, dict):
        raise InvalidEventError(f"event {event_id}: data must be an object")
    # Key Vault writes PascalCase fields in the Event Grid schema and camelCase in CloudEvents.
    data = {str(key).lower(): value for key, value in data.items()}
    object_type = data.get("objecttype")
    if object_type != "Secret":
        raise InvalidEventError(f"event {event_id}: ObjectType must be 'Secret', got {object_type!r}")
    secret_id = _required(data.get("id"), "data.Id")
    try:
        identifier = KeyVaultSecretIdentifier(secret_id)
    except ValueError as exc:
        raise InvalidEventError(f"event {event_id}: data.Id is not a secret identifier: {exc}") from None
    name = _required(data.get("objectname"), "data.ObjectName")
    if not identifier.vault_url.startswith("https://"):
        raise InvalidEventError(f"event {event_id}: vault URL must use https")
    sweep_job = isinstance(topic, str) and topic.startswith(SWEEP_TOPIC_PREFIX)
    version: str | None
    if sweep_job and data.get("version") is None and identifier.version is None:
        version = None
    else:
        version = _required(data.get("version"), "data.Version")
    if identifier.name != name or identifier.version != version:
        raise InvalidEventError(f"event {event_id}: data.Id disagrees with ObjectName/Version")
    _check_consistency(
        event_id, identifier.vault_url, name, vault_name=data.get("vaultname"), topic=topic, subject=subject
    )
    return SecretEvent(
        event_id=event_id,
        event_type=event_type,
        schema=schema,
        vault_url=identifier.vault_url.rstrip("/").lower(),
        secret_name=name,
        version=version,
        # Only the service's own jobs (sweep topic) may carry the marker; a Key Vault event never does.
        on_demand=sweep_job and data.get(ON_DEMAND_FIELD.lower()) is True,
    )


def _check_consistency(event_id: str, vault_url: str, name: str, *, vault_name: Any, topic: Any, subject: Any) -> None:
    """Every field naming the vault or the secret must name the ones in data.Id (one clear refusal)."""
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id

    host = (urlsplit(vault_url).hostname or "").lower()
    vault_name = _required(vault_name, "data.VaultName").lower()
    sweep_job = isinstance(topic, str) and topic.startswith(SWEEP_TOPIC_PREFIX)
    problems = []
    # Key Vault's DNS names are <vault>.<vault domain>; the local stack's IP or localhost names no vault.
    if "." in host and not host.replace(".", "").isdigit() and host.split(".")[0] != vault_name:
        problems.append(f"VaultName {vault_name!r} is not the vault of data.Id ({host})")
    if sweep_job:
        if topic != f"{SWEEP_TOPIC_PREFIX}{host}":
            problems.append(f"sweep topic {topic!r} is not for {host}")
    elif not isinstance(topic, str) or not is_valid_resource_id(topic):
        problems.append(f"topic/source {topic!r} is not a Key Vault resource id")
    else:
        parts = {key: str(value).lower() for key, value in parse_resource_id(topic).items()}
        if parts.get("namespace") != "microsoft.keyvault" or parts.get("type") != "vaults":
            problems.append(f"topic/source {topic!r} is not a Key Vault resource id")
        elif parts.get("name") != vault_name:
            problems.append(f"topic/source names vault {parts.get('name')!r}, VaultName is {vault_name!r}")
    if subject != name:
        problems.append(f"subject {subject!r} is not the secret of data.Id ({name!r})")
    if problems:
        raise InvalidEventError(f"event {event_id}: fields disagree with data.Id: " + "; ".join(problems))


def secret_event_payload(
    vault_url: str,
    name: str,
    event_type: SecretEventType,
    *,
    event_id: str,
    expires_on: int | None,
    version: str | None = None,
    on_demand: bool = False,
) -> dict[str, Any]:
    """A job the service raises itself, as a Key Vault event in the Event Grid schema: a sweep job has no
    version (whatever is current); an operator's on-demand job names the version it saw and carries the
    on-demand marker, so a duplicate request after the rotation is skipped as superseded."""
    host = (urlsplit(vault_url).hostname or "").lower()
    return {
        "id": event_id,
        "topic": f"{SWEEP_TOPIC_PREFIX}{host}",
        "subject": name,
        "eventType": event_type.value,
        "eventTime": datetime.now(UTC).isoformat(),
        "data": {
            "Id": f"{vault_url.rstrip('/')}/secrets/{name}" + (f"/{version}" if version else ""),
            "VaultName": host.split(".")[0],
            "ObjectType": "Secret",
            "ObjectName": name,
            "Version": version,
            "NBF": None,
            "EXP": expires_on,
            **({ON_DEMAND_FIELD: True} if on_demand else {}),
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }
