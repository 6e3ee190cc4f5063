"""Parsing real Key Vault event payloads in both schemas, and refusing malformed ones."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from secret_rotation.errors import InvalidEventError
from secret_rotation.events import (
    EventSchema,
    IgnoredEvent,
    SecretEvent,
    SecretEventType,
    decode_payload,
    parse_event,
    secret_event_payload,
)
from tests.support.events import fixture

VERSION = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


@pytest.mark.parametrize(
    ("schema", "kind", "expected_schema", "expected_type"),
    [
        ("eventgrid", "near_expiry", EventSchema.EVENT_GRID, SecretEventType.NEAR_EXPIRY),
        ("cloudevents", "near_expiry", EventSchema.CLOUD_EVENTS, SecretEventType.NEAR_EXPIRY),
        ("eventgrid", "expired", EventSchema.EVENT_GRID, SecretEventType.EXPIRED),
    ],
)
def test_secret_events_parse_in_both_schemas(
    schema: str, kind: str, expected_schema: EventSchema, expected_type: SecretEventType
) -> None:
    event = parse_event(fixture(schema, kind))
    assert isinstance(event, SecretEvent)
    assert event.schema is expected_schema and event.event_type is expected_type
    assert event.vault_url == "https://kv-rotation.vault.azure.net"
    assert (event.secret_name, event.version) == ("app-db-password", VERSION)


def test_other_key_vault_events_are_ignored() -> None:
    event = parse_event(fixture("eventgrid", "new_version"))
    assert isinstance(event, IgnoredEvent) and event.event_type == "Microsoft.KeyVault.SecretNewVersionCreated"


def _broken(schema: str, change: Any) -> dict[str, Any]:
    event = copy.deepcopy(fixture(schema))
    change(event)
    return event


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"hello": "world"}, "neither Event Grid schema"),
        (_broken("eventgrid", lambda e: e.pop("id")), "'id' is missing"),
        (_broken("eventgrid", lambda e: e.pop("subject")), "'subject' is missing"),
        (_broken("eventgrid", lambda e: e.update(data="text")), "data must be an object"),
        (_broken("eventgrid", lambda e: e["data"].update(ObjectType="Key")), "ObjectType must be 'Secret'"),
        (_broken("eventgrid", lambda e: e["data"].update(Id="not a url")), "not a secret identifier"),
        (_broken("eventgrid", lambda e: e["data"].update(Version="other")), "disagrees"),
        (_broken("eventgrid", lambda e: e["data"].pop("ObjectName")), "ObjectName"),
        (
            _broken("eventgrid", lambda e: e["data"].update(Id=e["data"]["Id"].replace("https", "http"))),
            "https",
        ),
        (_broken("cloudevents", lambda e: e.pop("source")), "malformed event envelope"),
        (_broken("cloudevents", lambda e: e.update(specversion="0.3")), "specversion"),
    ],
)
def test_malformed_events_are_refused_with_the_reason(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        parse_event(payload)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bodies_that_are_not_one_json_object_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidEventError):
        decode_payload(body)


def test_a_single_event_array_is_accepted() -> None:
    payload = decode_payload(json.dumps([fixture("eventgrid")]))
    assert isinstance(parse_event(payload), SecretEvent)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["data"].update(VaultName="kv-other"), "VaultName 'kv-other' is not the vault of data.Id"),
        (lambda e: e.update(topic=e["topic"].replace("kv-rotation", "kv-other")), "topic/source names vault"),
        (
            lambda e: e.update(
                topic="/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/kv-rotation"
            ),
            "not a Key Vault resource id",
        ),
        (lambda e: e.update(subject="another-secret"), "subject 'another-secret' is not the secret"),
    ],
)
def test_events_whose_fields_disagree_with_data_id_are_refused(change: Any, message: str) -> None:
    with pytest.raises(InvalidEventError, match=r"fields disagree with data\.Id") as refused:
        parse_event(_broken("eventgrid", change))
    assert message in str(refused.value)


def test_cloudevents_source_must_name_the_vault_too() -> None:
    event = _broken("cloudevents", lambda e: e.update(source=e["source"].replace("kv-rotation", "kv-other")))
    with pytest.raises(InvalidEventError, match="topic/source names vault 'kv-other'"):
        parse_event(event)


@pytest.mark.parametrize("kind", ["near_expiry", "expired"])
def test_expiry_events_of_pending_records_are_acknowledged_and_ignored(kind: str) -> None:
    def rename(event: dict[str, Any]) -> None:
        name = "app-db-password--rotation-pending"
        event["subject"] = event["data"]["ObjectName"] = name
        event["data"]["Id"] = event["data"]["Id"].replace("/app-db-password/", f"/{name}/")

    event = parse_event(_broken("eventgrid", rename))
    assert isinstance(event, IgnoredEvent) and "is a pending record" in (event.reason or "")


@pytest.mark.parametrize("encode", [lambda t: t, lambda t: base64.b64encode(t.encode()).decode()])
def test_queue_bodies_are_accepted_as_raw_or_base64_json(encode: Any) -> None:
    body = encode(json.dumps(fixture("eventgrid")))
    assert isinstance(parse_event(decode_payload(body)), SecretEvent)
    assert isinstance(parse_event(decode_payload(body.encode())), SecretEvent)


def test_sweep_jobs_name_no_version_and_parse() -> None:
    payload = secret_event_payload(
        "https://kv-rotation.vault.azure.net", "db", SecretEventType.EXPIRED, event_id="sweep-1", expires_on=None
    )
    event = parse_event(payload)
    assert isinstance(event, SecretEvent) and event.version is None and event.secret_name == "db"
    payload["topic"] = "/sweep/elsewhere.vault.azure.net"
    with pytest.raises(InvalidEventError, match="sweep topic"):
        parse_event(payload)


def test_only_sweep_jobs_may_omit_the_version() -> None:
    with pytest.raises(InvalidEventError, match=r"data\.Version"):
        parse_event(
            _broken("eventgrid", lambda e: e["data"].update(Version=None, Id=e["data"]["Id"].rsplit("/", 1)[0]))
        )
