"""The local Event Grid topic receiver, driven by the real `azure.eventgrid.aio.EventGridPublisherClient`.

The service will publish rotation outcomes with its managed identity; the topic key exists for local
tools. Both credentials must work, in both event schemas, and anything else must get Event Grid's 401.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo, AzureKeyCredential, TokenRequestOptions
from azure.core.exceptions import ClientAuthenticationError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent
from azure.eventgrid.aio import EventGridPublisherClient
from azure.identity.aio import ManagedIdentityCredential

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(stack_env: dict[str, str]) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=stack_env["KEYVAULT_CA_BUNDLE"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


class Received:
    """The topic's test endpoints."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url

    async def all(self) -> list[dict[str, Any]]:
        async with self.http.get(self.url) as response:
            assert response.status == 200
            events: list[dict[str, Any]] = await response.json()
            return events

    async def clear(self) -> None:
        async with self.http.delete(self.url) as response:
            assert response.status == 200


@pytest.fixture
async def received(http: aiohttp.ClientSession, stack_env: dict[str, str]) -> AsyncIterator[Received]:
    topic = Received(http, stack_env["OUTCOME_TOPIC_EVENTS_URL"])
    await topic.clear()
    yield topic
    await topic.clear()


def _publisher(stack: dict[str, str], credential: Any) -> EventGridPublisherClient:
    return EventGridPublisherClient(
        stack["ROTATION_OUTCOME_TOPIC_ENDPOINT"], credential, connection_verify=stack["KEYVAULT_CA_BUNDLE"]
    )


def _outcome(secret: str) -> EventGridEvent:
    return EventGridEvent(
        subject=f"secrets/{secret}",
        event_type="SecretRotation.Rotated",
        data={"secretName": secret, "status": "SecretRotated"},
        data_version="1.0",
    )


async def test_topic_key_with_event_grid_schema(stack_env: dict[str, str], received: Received):
    names = [f"s-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    async with _publisher(stack_env, AzureKeyCredential(stack_env["OUTCOME_TOPIC_KEY"])) as client:
        await client.send([_outcome(name) for name in names])
    events = await received.all()
    assert [(e["schema"], e["auth"]) for e in events] == [("eventgrid", "key")] * 2
    assert [e["event"]["data"]["secretName"] for e in events] == names
    first = events[0]["event"]
    assert first["eventType"] == "SecretRotation.Rotated" and first["dataVersion"] == "1.0"
    assert first["subject"] == f"secrets/{names[0]}" and first["id"] and first["eventTime"]


async def test_managed_identity_with_cloud_events(identity_env: dict[str, str], received: Received):
    event = CloudEvent(source="/secret-rotation", type="SecretRotation.Rotated", data={"secretName": "db"})
    async with ManagedIdentityCredential() as credential, _publisher(identity_env, credential) as client:
        await client.send(event)
    (record,) = await received.all()
    assert (record["schema"], record["auth"]) == ("cloudevents", "token")
    assert record["client_id"] == identity_env["AZURE_CLIENT_ID"]
    assert record["event"]["id"] == event.id and record["event"]["specversion"] == "1.0"
    assert record["event"]["source"] == "/secret-rotation" and record["event"]["data"] == {"secretName": "db"}


async def test_wrong_key_gets_401(stack_env: dict[str, str], received: Received):
    async with _publisher(stack_env, AzureKeyCredential("not-the-topic-key")) as client:
        with pytest.raises(ClientAuthenticationError) as info:
            await client.send(_outcome("db"))
    assert info.value.status_code == 401
    assert await received.all() == []


class _VaultTokenCredential:
    """Hands the SDK a genuine token of this stack, but for Key Vault instead of Event Grid."""

    def __init__(self, inner: ManagedIdentityCredential) -> None:
        self._inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token: AccessToken = await self._inner.get_token("https://vault.azure.net/.default")
        return token

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        info: AccessTokenInfo = await self._inner.get_token_info("https://vault.azure.net/.default")
        return info


async def test_wrong_audience_token_gets_401(identity_env: dict[str, str], received: Received):
    async with ManagedIdentityCredential() as inner, _publisher(identity_env, _VaultTokenCredential(inner)) as client:
        with pytest.raises(ClientAuthenticationError) as info:
            await client.send(_outcome("db"))
    assert info.value.status_code == 401
    assert await received.all() == []


async def test_raw_requests_without_auth_or_with_bad_events(
    http: aiohttp.ClientSession, stack_env: dict[str, str], received: Received
):
    url = stack_env["ROTATION_OUTCOME_TOPIC_ENDPOINT"]
    params = {"api-version": "2018-01-01"}
    async with http.post(url, params=params, json=[]) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "Unauthorized"
    key = {"aeg-sas-key": stack_env["OUTCOME_TOPIC_KEY"]}
    for body in ([], [{"id": "1", "subject": "s"}], {"id": "1"}):
        async with http.post(url, params=params, json=body, headers=key) as response:
            assert response.status == 400, body
            assert (await response.json())["error"]["code"] == "BadRequest"
    cloud = {**key, "Content-Type": "application/cloudevents+json; charset=utf-8"}
    single = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0"}
    async with http.post(url, params=params, json=single, headers=cloud) as response:
        assert response.status == 200
    assert [e["schema"] for e in await received.all()] == ["cloudevents"]
