"""Local Event Grid custom topic over TLS, receiving what `azure.eventgrid.aio.EventGridPublisherClient` sends.

The service publishes one outcome event per rotation to a topic; this double stands in for that topic so
tests can read back what was published. It accepts what the SDK (azure-eventgrid 4.x, basic tier) puts
on the wire: `POST /api/events?api-version=2018-01-01` with a JSON array of Event Grid schema events
(`application/json`), or of CloudEvents 1.0 (`application/cloudevents-batch+json`; a single
`application/cloudevents+json` event is accepted too). Like Event Grid it requires either the topic key
in `aeg-sas-key` or a bearer token for `https://eventgrid.azure.net` (minted by the stack's identity
endpoint, checked with `tests.doubles.tokens`) and answers 401 otherwise, 400 to malformed events.

Test endpoints (no auth): GET /ping, GET /__events (every accepted event with its schema and the auth
method used) and DELETE /__events. Events live in memory; bodies are never logged.

Run: python -m tests.doubles.eventgrid_topic --port 8445 --cert C --key K --key-file T --topic-key-file F
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import json
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.doubles import tokens
from tests.doubles.identity import PathOnlyAccessLogger

AUDIENCE = "https://eventgrid.azure.net"
KEY_HEADER = "aeg-sas-key"
EVENTS_PATH = "/api/events"
MAX_BATCH_BYTES = 1024 * 1024  # Event Grid's limit for one publish request
EVENTGRID_FIELDS = ("id", "subject", "eventType", "eventTime", "dataVersion")
CLOUDEVENT_FIELDS = ("id", "source", "type", "specversion")
SCHEMAS = {
    "application/json": "eventgrid",
    "application/cloudevents-batch+json": "cloudevents",
    "application/cloudevents+json": "cloudevents",
}


@dataclass
class Topic:
    """The topic's credentials and what it received."""

    token_key: bytes
    topic_key: str
    received: list[dict[str, Any]] = field(default_factory=list)


TOPIC = web.AppKey("topic", Topic)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _authenticate(request: web.Request, topic: Topic) -> tuple[str, dict[str, Any]] | None:
    """("key" | "token", token claims) for an accepted caller, None otherwise."""
    key = request.headers.get(KEY_HEADER)
    if key is not None:
        return ("key", {}) if hmac.compare_digest(key.encode(), topic.topic_key.encode()) else None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return "token", tokens.verify(topic.token_key, token.strip(), AUDIENCE)
    except tokens.TokenError:
        return None


def _validate(schema: str, body: Any) -> list[dict[str, Any]]:
    """The events of a publish body, or ValueError naming the first problem."""
    events = [body] if schema == "cloudevents" and isinstance(body, dict) else body
    if not isinstance(events, list) or not events:
        raise ValueError("the body must be a non-empty JSON array of events")
    required = EVENTGRID_FIELDS if schema == "eventgrid" else CLOUDEVENT_FIELDS
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValueError(f"event {index} is not a JSON object")
        missing = [name for name in required if not isinstance(event.get(name), str) or not event[name]]
        if missing:
            raise ValueError(
                f"event {index} lacks required string field(s) {', '.join(missing)} of the {schema} schema"
            )
        if schema == "cloudevents" and event["specversion"] != "1.0":
            raise ValueError(f"event {index} has specversion {event['specversion']!r}; only 1.0 is supported")
    return events


async def publish(request: web.Request) -> web.Response:
    topic = request.app[TOPIC]
    auth = _authenticate(request, topic)
    if auth is None:
        # Event Grid answers both a missing and a wrong credential with 401 and says nothing more useful.
        return _error(401, "Unauthorized", f"The request authorization key is not authorized for {request.host}.")
    if not request.query.get("api-version"):
        return _error(400, "BadRequest", "The api-version query parameter is required.")
    schema = SCHEMAS.get(request.content_type)
    if schema is None:
        return _error(400, "BadRequest", f"Unsupported content type {request.content_type!r}.")
    try:
        events = _validate(schema, json.loads(await request.read()))
    except ValueError as exc:
        return _error(400, "BadRequest", str(exc))
    method, claims = auth
    received = dt.datetime.now(dt.UTC).isoformat()
    for event in events:
        record: dict[str, Any] = {"schema": schema, "event": event, "auth": method, "received": received}
        if claims:
            record["client_id"] = claims.get("appid")
        topic.received.append(record)
    return web.Response(status=200)


async def list_events(request: web.Request) -> web.Response:
    return web.json_response(request.app[TOPIC].received)


async def clear_events(request: web.Request) -> web.Response:
    topic = request.app[TOPIC]
    count = len(topic.received)
    topic.received.clear()
    return web.json_response({"deleted": count})


async def ping(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(token_key: bytes, topic_key: str) -> web.Application:
    """Build the aiohttp application."""
    app = web.Application(client_max_size=MAX_BATCH_BYTES)
    app[TOPIC] = Topic(token_key=token_key, topic_key=topic_key)
    app.router.add_post(EVENTS_PATH, publish)
    app.router.add_get("/__events", list_events, allow_head=False)
    app.router.add_delete("/__events", clear_events)
    app.router.add_get("/ping", ping)
    return app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve HTTPS until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8445)
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="server private key (PEM)")
    parser.add_argument("--key-file", type=Path, required=True, help="token signing key shared with identity")
    # From a file, so the topic key never shows up in `ps` output.
    parser.add_argument("--topic-key-file", type=Path, required=True, help="file holding the aeg-sas-key value")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    topic_key = args.topic_key_file.read_text().strip()
    if not topic_key:
        parser.error(f"{args.topic_key_file} is empty")
    app = create_app(tokens.ensure_key_file(args.key_file), topic_key)
    web.run_app(app, host=args.host, port=args.port, ssl_context=context, access_log_class=PathOnlyAccessLogger)


if __name__ == "__main__":
    main()
