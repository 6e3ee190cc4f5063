"""Real Key Vault event payloads (tests/events/*.json) re-addressed to a given vault, secret and version."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

EVENTS = Path(__file__).resolve().parent.parent / "events"

FIXTURES = {
    ("eventgrid", "near_expiry"): "secret_near_expiry.eventgrid.json",
    ("cloudevents", "near_expiry"): "secret_near_expiry.cloudevents.json",
    ("eventgrid", "expired"): "secret_expired.eventgrid.json",
    ("eventgrid", "new_version"): "secret_new_version_created.eventgrid.json",
}


def fixture(schema: str, kind: str = "near_expiry") -> dict[str, Any]:
    result: dict[str, Any] = json.loads((EVENTS / FIXTURES[(schema, kind)]).read_text())
    return result


def key_vault_event(
    vault_url: str, name: str, version: str, *, schema: str = "eventgrid", kind: str = "near_expiry"
) -> dict[str, Any]:
    event = copy.deepcopy(fixture(schema, kind))
    event["id"] = str(uuid.uuid4())
    event["subject"] = name
    data = event["data"]
    secret_id = f"{vault_url.rstrip('/')}/secrets/{name}/{version}"
    # A Key Vault DNS name is <vault>.<domain>; the local stack's IP/localhost keep the fixture's vault name.
    host = urlsplit(vault_url).hostname or ""
    vault_name = host.split(".")[0] if "." in host and not host.replace(".", "").isdigit() else None
    for key in list(data):
        lowered = key.lower()
        if lowered == "id":
            data[key] = secret_id
        elif lowered == "objectname":
            data[key] = name
        elif lowered == "version":
            data[key] = version
        elif lowered == "vaultname" and vault_name:
            data[key] = vault_name
    topic = "source" if "specversion" in event else "topic"
    if vault_name:
        event[topic] = event[topic].rsplit("/", 1)[0] + f"/{vault_name}"
    return event
