"""First hop: turn a delivered Key Vault event into a frozen `SecretEvent`, or say why not.

Two stages: the envelope (Event Grid schema or CloudEvents 1.0, parsed by the azure-eventgrid and
azure-core models) and then the Key Vault payload (`Id`, `VaultName`, `ObjectType`, `ObjectName`,
`Version`). The vault URL, secret name and version come from the payload's `Id`, parsed by the Key Vault
SDK's own identifier class, and must agree with the other fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidEventError


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


@dataclass(frozen=True)
class SecretEvent:
    event_id: str
    event_type: SecretEventType
    schema: EventSchema
    vault_url: str
    secret_name: str
    version: str
    # Raised by an operator (`on_demand`, the CLI), not by Key Vault: rotate even when not yet due.
    on_demand: bool = False


# Marker in the data of jobs an operator raised; Key Vault's own events never carry it.
ON_DEMAND_FIELD = "RotationOnDemand"


def decode_payload(body: bytes | str) -> Mapping[str, Any]:
    """JSON text of one event (a queue message or a webhook body holding a single event)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEventError(f"event is not valid JSON: {exc.__class__.__name__}") from None
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise InvalidEventError("event must be one JSON object")
    return payload


def parse_event(payload: Mapping[str, Any]) -> SecretEvent | IgnoredEvent:
    event_id, event_type, schema, data = _parse_envelope(payload)
    if event_type not in {t.value for t in SecretEventType}:
        return IgnoredEvent(event_id=event_id, event_type=event_type)
    return _parse_secret_payload(event_id, SecretEventType(event_type), schema, data)


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


def _parse_secret_payload(event_id: str, event_type: SecretEventType, schema: EventSchema, data: Any) -> SecretEvent:
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
    version = _required(data.get("version"), "data.Version")
    if identifier.name != name or identifier.version != version:
        raise InvalidEventError(f"event {event_id}: data.Id disagrees with ObjectName/Version")
    if not identifier.vault_url.startswith("https://"):
        raise InvalidEventError(f"event {event_id}: vault URL must use https")
    return SecretEvent(
        event_id=event_id,
        event_type=event_type,
        schema=schema,
        vault_url=identifier.vault_url.rstrip("/").lower(),
        secret_name=name,
        version=version,
        on_demand=data.get(ON_DEMAND_FIELD.lower()) is True,
    )


def secret_event_payload(
    vault_url: str,
    name: str,
    version: str,
    event_type: SecretEventType,
    *,
    event_id: str,
    expires_on: int | None,
    on_demand: bool = False,
) -> dict[str, Any]:
    """A Key Vault event in the Event Grid schema, for jobs the service raises itself (the sweep, and
    operators' on-demand rotations, which carry the on-demand marker)."""
    host = urlsplit(vault_url).hostname or ""
    return {
        "id": event_id,
        "topic": f"/{'on-demand' if on_demand else 'sweep'}/{host}",
        "subject": name,
        "eventType": event_type.value,
        "eventTime": datetime.now(UTC).isoformat(),
        "data": {
            "Id": f"{vault_url.rstrip('/')}/secrets/{name}/{version}",
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
