"""The fault-injecting proxies of the local stack, driven through the real Azure SDK clients.

`KEYVAULT_URL_FAULTY` and `IDENTITY_ENDPOINT_FAULTY` reach the same Key Vault and identity doubles as the
direct URLs; the control API (`FAULTS_*_CONTROL`) schedules 429/503 answers, connection resets and delays.
The SDK clients run with `retry_total=0`, so every injected fault surfaces exactly as the service's own
retry layer would first see it. Also here: the Key Vault double's one-vault-per-authority partitioning,
which is what lets the proxy rewrite Host and still reach the vault of the direct URL.

Secret values never appear in output: comparisons go through `_assert_same_value`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from tests.support.faults import Faults

pytestmark = pytest.mark.integration

VAULT_SCOPE = "https://vault.azure.net/.default"
SECRETS = r"^/secrets/"


def _assert_same_value(got: str | None, want: str) -> None:
    # A plain `assert got == want` would print both values in pytest's failure report.
    if got != want:
        raise AssertionError("secret value differs from what was stored (values withheld)")


def _name() -> str:
    return f"faults-{uuid.uuid4().hex[:20]}"


def _headers(error: HttpResponseError) -> Any:
    response: Any = error.response  # azure-core's response protocols do not declare `headers`
    assert response is not None
    return response.headers


def _authority(url: str) -> str:
    return urlsplit(url).netloc


def _client(stack: dict[str, str], url: str, credential: Any) -> SecretClient:
    return SecretClient(
        url,
        credential,
        api_version="7.6",
        verify_challenge_resource=False,
        connection_verify=stack["KEYVAULT_CA_BUNDLE"],
        retry_total=0,
    )


@pytest.fixture
async def credential(identity_env: dict[str, str]) -> AsyncIterator[ManagedIdentityCredential]:
    async with ManagedIdentityCredential() as mi:
        yield mi


@pytest.fixture
async def faulty(
    identity_env: dict[str, str], credential: ManagedIdentityCredential, kv_faults: Faults
) -> AsyncIterator[SecretClient]:
    """A client through the Key Vault proxy, past its bearer challenge, with the proxy's stats zeroed."""
    async with _client(identity_env, identity_env["KEYVAULT_URL_FAULTY"], credential) as client:
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret(_name())
        await kv_faults.reset_stats()
        yield client


@pytest.fixture
async def direct(identity_env: dict[str, str], credential: ManagedIdentityCredential) -> AsyncIterator[SecretClient]:
    async with _client(identity_env, identity_env["KEYVAULT_URL"], credential) as client:
        yield client


# --- plain forwarding --------------------------------------------------------------------------------------


async def test_set_and_get_through_proxy_reach_the_direct_vault(
    faulty: SecretClient, direct: SecretClient, stack_env: dict[str, str], kv_faults: Faults
):
    name, value = _name(), uuid.uuid4().hex
    stored = await faulty.set_secret(name, value, tags={"via": "proxy"})
    assert stored.id == f"{stack_env['KEYVAULT_URL_FAULTY']}/secrets/{name}/{stored.properties.version}"
    _assert_same_value((await faulty.get_secret(name)).value, value)

    seen = await direct.get_secret(name)
    _assert_same_value(seen.value, value)
    assert seen.id == f"{stack_env['KEYVAULT_URL']}/secrets/{name}/{stored.properties.version}"
    assert seen.properties.tags == {"via": "proxy"}
    listed = [p async for p in faulty.list_properties_of_secret_versions(name)]
    assert [p.id for p in listed] == [stored.id]
    stats = await kv_faults.stats()
    assert stats["forwarded"] == 3
    assert stats["injected"] == {"409": 0, "429": 0, "503": 0, "reset": 0, "delay": 0}


async def test_paging_next_links_stay_on_the_proxy(faulty: SecretClient, stack_env: dict[str, str], kv_faults: Faults):
    name = _name()
    for _ in range(3):
        await faulty.set_secret(name, uuid.uuid4().hex)
    await kv_faults.reset_stats()
    pages = [page async for page in faulty.list_properties_of_secret_versions(name, max_page_size=1).by_page()]
    assert len(pages) == 3
    # Every page came through the proxy: a next link naming the direct URL would bypass it.
    assert (await kv_faults.stats())["forwarded"] == 3


# --- injected faults ---------------------------------------------------------------------------------------


async def test_throttling_surfaces_as_429_with_retry_after(faulty: SecretClient, kv_faults: Faults):
    name = _name()
    await faulty.set_secret(name, uuid.uuid4().hex)
    await kv_faults.schedule(
        {
            "match": {"method": "GET", "path_regex": SECRETS},
            "action": "status",
            "status": 429,
            "retry_after": 7,
            "times": 1,
        }
    )
    with pytest.raises(HttpResponseError) as info:
        await faulty.get_secret(name)
    assert info.value.status_code == 429
    assert _headers(info.value)["Retry-After"] == "7"
    assert info.value.error is not None and info.value.error.code == "Throttled"
    await faulty.get_secret(name)  # `times` is used up
    stats = await kv_faults.stats()
    assert stats["injected"]["429"] == 1 and stats["forwarded"] == 2
    assert stats["by_rule"][0]["matched"] == 2 and stats["by_rule"][0]["applied"] == 1


async def test_throttling_without_retry_after_as_key_vault_sends_it(faulty: SecretClient, kv_faults: Faults):
    """A 429 recorded from Key Vault (vcsjones/AzureSignTool#219, full headers) carries no Retry-After:
    `{"error":{"code":"Throttled","message":"Request was not processed because too many requests were
    received. Reason: VaultRequestTypeLimitReached"}}`; Microsoft's throttling guidance then says to back
    off exponentially (Azure Key Vault throttling guidance)."""
    name = _name()
    await faulty.set_secret(name, uuid.uuid4().hex)
    await kv_faults.schedule({"match": {"method": "GET", "path_regex": SECRETS}, "action": "status", "status": 429})
    with pytest.raises(HttpResponseError) as info:
        await faulty.get_secret(name)
    assert info.value.status_code == 429 and "Retry-After" not in _headers(info.value)
    error = info.value.error
    assert error is not None and error.code == "Throttled"
    assert error.message == (
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"
    )


async def test_conflicts_surface_as_409_with_key_vault_codes(faulty: SecretClient, kv_faults: Faults):
    """Key Vault answers 409 `Conflict` for concurrent operations on one item ("It's recommended to
    sequence operations or to implement retry logic", Microsoft Learn, Common error codes for Azure Key
    Vault: ConflictError) and for a name that is deleted but recoverable (inner error
    `ObjectIsDeletedButRecoverable`, see tests/doubles_fidelity/test_keyvault_soft_delete.py); a rule
    gives either, with `inner_code` and `message` when the default is not the one wanted."""
    name = _name()
    await kv_faults.schedule(
        {"match": {"method": "PATCH"}, "action": "status", "status": 409, "times": 1},
        {
            "match": {"method": "PUT"},
            "action": "status",
            "status": 409,
            "inner_code": "ObjectIsDeletedButRecoverable",
            "message": f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused",
            "times": 1,
        },
    )
    with pytest.raises(HttpResponseError) as deleted:
        await faulty.set_secret(name, uuid.uuid4().hex)
    error = deleted.value.error
    assert deleted.value.status_code == 409 and error is not None and error.code == "Conflict"
    assert error.innererror.get("code") == "ObjectIsDeletedButRecoverable" and name in str(error.message)

    await faulty.set_secret(name, uuid.uuid4().hex)  # the rule is used up
    with pytest.raises(HttpResponseError) as busy:
        await faulty.update_secret_properties(name, tags={"a": "b"})
    error = busy.value.error
    assert busy.value.status_code == 409 and error is not None and error.code == "Conflict"
    assert not error.innererror and "sequence operations or to implement retry logic" in str(error.message)
    assert (await kv_faults.stats())["injected"]["409"] == 2
    await kv_faults._call("PUT", body={"rules": [{"action": "status", "status": 409, "inner_code": 7}]}, expect=400)


THROTTLED = "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"


def _other_host(url: str) -> str:
    """The same proxy under its other name: Key Vault counts limits per vault, the proxy per authority."""
    return url.replace("127.0.0.1", "localhost")


async def test_throttle_mode_enforces_the_create_limit_per_vault(
    faulty: SecretClient, kv_faults: Faults, identity_env: dict[str, str], credential: ManagedIdentityCredential
):
    """Microsoft Learn, Azure Key Vault service limits: per vault per region, "CREATE secret: 300" and "All
    other transactions: 4,000" in 10 seconds; over a limit Key Vault "returns HTTP status code 429 (Too many
    requests)", and "Failed requests that return a 429 do not count towards the throttle limits" (Azure Key
    Vault throttling guidance). The answer is Key Vault's recorded 429: code Throttled, reason
    VaultRequestTypeLimitReached, no Retry-After (vcsjones/AzureSignTool#219)."""
    report = await kv_faults.throttle(scale=0.01)
    assert report["limits"] == {"create": 3, "other": 40}
    names = [_name() for _ in range(4)]
    for name in names[:3]:
        await faulty.set_secret(name, uuid.uuid4().hex)
    for _ in range(2):  # the refused request did not take a slot: still refused
        with pytest.raises(HttpResponseError) as info:
            await faulty.set_secret(names[3], uuid.uuid4().hex)
        error = info.value.error
        assert info.value.status_code == 429 and "Retry-After" not in _headers(info.value)
        assert error is not None and (error.code, error.message) == ("Throttled", THROTTLED)
    await faulty.get_secret(names[0])  # reads are "other transactions", within their own limit

    async with _client(identity_env, _other_host(identity_env["KEYVAULT_URL_FAULTY"]), credential) as other:
        await other.set_secret(names[3], uuid.uuid4().hex)  # another vault, its own window

    vaults = (await kv_faults.throttle_report())["vaults"]
    mine = vaults[_authority(identity_env["KEYVAULT_URL_FAULTY"])]
    assert mine["create"] == {"limit": 3, "admitted": 3, "throttled": 2, "in_window": 3}
    assert mine["other"]["admitted"] == 1 and mine["other"]["throttled"] == 0
    # Its client's first request drew the bearer challenge (no token, no transaction): not counted.
    other_create = vaults[_authority(_other_host(identity_env["KEYVAULT_URL_FAULTY"]))]["create"]
    assert (other_create["admitted"], other_create["throttled"]) == (1, 0)
    assert (await kv_faults.stats())["throttled"] == 2


async def test_throttle_mode_limits_other_transactions_and_can_send_retry_after(
    faulty: SecretClient, kv_faults: Faults
):
    name = _name()
    await faulty.set_secret(name, uuid.uuid4().hex)
    report = await kv_faults.throttle(scale=0.001, retry_after="auto")  # 1 CREATE, 4 others per 10 s
    assert report["limits"] == {"create": 1, "other": 4}
    for _ in range(4):
        await faulty.get_secret(name)
    with pytest.raises(HttpResponseError) as info:
        await faulty.update_secret_properties(name, tags={"a": "b"})
    assert info.value.status_code == 429
    assert 1 <= int(_headers(info.value)["Retry-After"]) <= 10  # until the oldest request leaves the window
    # The management API and the proxy's control API are not Key Vault transactions.
    async with kv_faults.http.get(faulty.vault_url + "/ping") as response:
        assert response.status == 200

    await kv_faults._call("POST", "/throttle/reset")
    await faulty.get_secret(name)
    assert (await kv_faults._call("DELETE", "/throttle")) == {"enabled": False}
    for bad in ({"scale": 0}, {"scale": "1"}, {"window_seconds": 1}, {"scale": 1, "retry_after": "later"}):
        body = await kv_faults._call("PUT", "/throttle", body=bad, expect=400)
        assert body["error"]["code"] == "BadParameter"


async def test_unavailable_surfaces_as_503(faulty: SecretClient, kv_faults: Faults):
    await kv_faults.schedule({"match": {"method": "PUT"}, "action": "status", "status": 503})
    with pytest.raises(HttpResponseError) as info:
        await faulty.set_secret(_name(), uuid.uuid4().hex)
    assert info.value.status_code == 503
    assert info.value.error is not None and info.value.error.code == "ServiceUnavailable"
    assert "Retry-After" not in _headers(info.value)
    assert (await kv_faults.stats())["forwarded"] == 0


async def test_reset_on_a_non_idempotent_request_surfaces(faulty: SecretClient, kv_faults: Faults):
    name = _name()
    await faulty.set_secret(name, uuid.uuid4().hex)
    await kv_faults.schedule({"match": {"method": "PATCH"}, "action": "reset", "times": 1})
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        await faulty.update_secret_properties(name, tags={"a": "b"})
    assert (await faulty.update_secret_properties(name, tags={"a": "b"})).tags == {"a": "b"}
    assert (await kv_faults.stats())["injected"]["reset"] == 1


async def test_one_reset_of_an_idempotent_request_is_absorbed_by_aiohttp(faulty: SecretClient, kv_faults: Faults):
    """aiohttp resends GET/PUT/DELETE once after a dropped connection, below azure-core's retry policy."""
    name = _name()
    await faulty.set_secret(name, uuid.uuid4().hex)
    await kv_faults.schedule({"match": {"method": "GET", "path_regex": SECRETS}, "action": "reset", "times": 1})
    await faulty.get_secret(name)  # no error even with retry_total=0
    stats = await kv_faults.stats()
    assert stats["injected"]["reset"] == 1 and stats["forwarded"] == 2

    await kv_faults.schedule({"match": {"method": "GET", "path_regex": SECRETS}, "action": "reset", "times": 2})
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        await faulty.get_secret(name)
    assert (await kv_faults.stats())["injected"]["reset"] == 3


async def test_delay_then_forward(faulty: SecretClient, kv_faults: Faults):
    """A delayed request is held at the proxy, not forwarded, while later requests pass; then it is
    forwarded and answered. Evidence from the proxy's counters and the order of answers, not the clock."""
    name, value = _name(), uuid.uuid4().hex
    await faulty.set_secret(name, value)
    await kv_faults.reset_stats()
    await kv_faults.schedule({"match": {"method": "GET"}, "action": "delay", "delay_seconds": 2.0, "times": 1})
    delayed = asyncio.ensure_future(faulty.get_secret(name))  # the SDK types it as a bare Awaitable
    for _ in range(100):  # until the proxy has picked the request up
        stats = await kv_faults.stats()
        if stats["injected"]["delay"]:
            break
        await asyncio.sleep(0.02)
    assert stats["injected"]["delay"] == 1 and stats["forwarded"] == 0, "held at the proxy, not forwarded"
    _assert_same_value((await faulty.get_secret(name)).value, value)  # times: 1, so this one passes
    assert not delayed.done(), "the later request was answered first"
    _assert_same_value((await delayed).value, value)
    stats = await kv_faults.stats()
    assert stats["injected"]["delay"] == 1 and stats["forwarded"] == 2


async def test_times_and_every(faulty: SecretClient, kv_faults: Faults):
    name = _name()
    await faulty.set_secret(name, uuid.uuid4().hex)
    get = {"method": "GET", "path_regex": f"^/secrets/{name}"}
    await kv_faults.schedule({"match": get, "action": "status", "status": 429, "times": 2})
    outcomes: list[int | None] = []
    for _ in range(3):
        try:
            await faulty.get_secret(name)
            outcomes.append(200)
        except HttpResponseError as exc:
            outcomes.append(exc.status_code)
    assert outcomes == [429, 429, 200]

    await kv_faults.schedule({"match": get, "action": "status", "status": 503, "every": 2})
    outcomes.clear()
    for _ in range(5):
        try:
            await faulty.get_secret(name)
            outcomes.append(200)
        except HttpResponseError as exc:
            outcomes.append(exc.status_code)
    assert outcomes == [200, 503, 200, 503, 200]
    rule = (await kv_faults.stats())["by_rule"][0]
    assert (rule["matched"], rule["applied"], rule["remaining"]) == (5, 2, None)


async def test_first_firing_rule_wins_and_non_matching_requests_pass(faulty: SecretClient, kv_faults: Faults):
    name = _name()
    await kv_faults.schedule(
        {"match": {"method": "DELETE"}, "action": "status", "status": 500},
        {"match": {"path_regex": f"/{name}$"}, "action": "status", "status": 503, "times": 1},
        {"match": {"path_regex": f"/{name}$"}, "action": "status", "status": 429},
    )
    with pytest.raises(HttpResponseError) as first:
        await faulty.set_secret(name, "x")
    with pytest.raises(HttpResponseError) as second:
        await faulty.set_secret(name, "x")
    assert (first.value.status_code, second.value.status_code) == (503, 429)
    stats = await kv_faults.stats()
    assert [r["matched"] for r in stats["by_rule"]] == [0, 2, 1]
    assert stats["injected"]["503"] == 1 and stats["injected"]["429"] == 1 and stats["forwarded"] == 0


async def test_stats_reset_and_bad_rules(kv_faults: Faults, http: aiohttp.ClientSession, stack_env: dict[str, str]):
    async with http.get(stack_env["KEYVAULT_URL_FAULTY"] + "/ping") as response:
        assert response.status == 200
    assert (await kv_faults.stats())["forwarded"] == 1
    await kv_faults.reset_stats()
    assert (await kv_faults.stats())["forwarded"] == 0
    for bad in ({"action": "explode"}, {"action": "status"}, {"action": "delay"}, {"action": "reset", "every": 0}):
        body = await kv_faults._call("PUT", body={"rules": [bad]}, expect=400)
        assert body["error"]["code"] == "BadParameter"
    await kv_faults._call("GET", "/unknown", expect=404)


# --- the identity proxy ------------------------------------------------------------------------------------


async def test_token_and_vault_both_through_proxies(
    identity_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, identity_faults: Faults, kv_faults: Faults
):
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity_env["IDENTITY_ENDPOINT_FAULTY"])
    name, value = _name(), uuid.uuid4().hex
    async with (
        ManagedIdentityCredential() as credential,
        _client(identity_env, identity_env["KEYVAULT_URL_FAULTY"], credential) as client,
    ):
        await client.set_secret(name, value)
        _assert_same_value((await client.get_secret(name)).value, value)
    assert (await identity_faults.stats())["forwarded"] == 1


async def test_identity_outage_makes_the_credential_raise(
    identity_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, identity_faults: Faults
):
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity_env["IDENTITY_ENDPOINT_FAULTY"])
    await identity_faults.schedule({"match": {"path_regex": "^/msi/token"}, "action": "status", "status": 503})
    # Without retry_total=0 azure-identity tries five times in about 5 s before giving up the same way.
    async with ManagedIdentityCredential(retry_total=0) as credential:
        with pytest.raises(ClientAuthenticationError) as info:
            await credential.get_token(VAULT_SCOPE)
    assert info.value.status_code == 503
    stats = await identity_faults.stats()
    assert stats["injected"]["503"] == 1 and stats["forwarded"] == 0


# --- one vault per authority -------------------------------------------------------------------------------


async def test_host_names_are_independent_vaults(
    identity_env: dict[str, str], credential: ManagedIdentityCredential, direct: SecretClient
):
    name, value = _name(), uuid.uuid4().hex
    async with _client(identity_env, identity_env["KEYVAULT_URL_2"], credential) as second:
        stored = await second.set_secret(name, value)
        assert stored.id == f"{identity_env['KEYVAULT_URL_2']}/secrets/{name}/{stored.properties.version}"
        _assert_same_value((await second.get_secret(name)).value, value)
    with pytest.raises(ResourceNotFoundError):
        await direct.get_secret(name)


async def test_management_limited_to_one_vault(
    identity_env: dict[str, str],
    credential: ManagedIdentityCredential,
    direct: SecretClient,
    http: aiohttp.ClientSession,
):
    management = identity_env["KEYVAULT_MANAGEMENT_URL"]
    second_vault = _authority(identity_env["KEYVAULT_URL_2"])
    name = _name()
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    await direct.set_secret(name, uuid.uuid4().hex, expires_on=expires)
    async with _client(identity_env, identity_env["KEYVAULT_URL_2"], credential) as second:
        await second.set_secret(name, uuid.uuid4().hex, expires_on=expires)
        async with http.post(f"{management}/requests/reset", params={"vault": second_vault}) as response:
            assert (await response.json())["total"] == 0
        await second.get_secret(name)
        params = {"seconds": "86400", "vault": identity_env["KEYVAULT_URL_2"]}  # a URL works as well
        async with http.post(f"{management}/time-shift", params=params) as response:
            assert response.status == 200
        assert (await second.get_secret(name)).properties.expires_on == expires - dt.timedelta(days=1)
    assert (await direct.get_secret(name)).properties.expires_on == expires
    async with http.get(f"{management}/requests", params={"vault": second_vault}) as response:
        assert (await response.json())["get"] == 2
    async with http.get(f"{management}/requests") as response:
        assert (await response.json())["get"] >= 3  # all vaults together


# --- lost answers ------------------------------------------------------------------------------------------


async def test_lost_answer_after_the_change_was_made(faulty: SecretClient, direct: SecretClient, kv_faults: Faults):
    name = _name()
    await faulty.set_secret(name, uuid.uuid4().hex)
    await kv_faults.schedule({"match": {"method": "PATCH"}, "action": "status", "status": 503, "forward_first": True})
    with pytest.raises(HttpResponseError) as info:
        await faulty.update_secret_properties(name, tags={"applied": "yes"})
    assert info.value.status_code == 503
    assert (await direct.get_secret(name)).properties.tags == {"applied": "yes"}


async def test_lost_answer_to_a_put_is_resent_by_aiohttp_and_makes_two_versions(
    faulty: SecretClient, direct: SecretClient, kv_faults: Faults
):
    """The duplicate the rotation protocol must tolerate: one set_secret call, two versions in the vault."""
    name = _name()
    rule = {"match": {"method": "PUT"}, "action": "reset", "times": 1, "forward_first": True}
    await kv_faults.schedule(rule)
    await faulty.set_secret(name, uuid.uuid4().hex)  # no error even with retry_total=0
    assert len([v async for v in direct.list_properties_of_secret_versions(name)]) == 2
    stats = await kv_faults.stats()
    assert stats["forwarded"] == 2 and stats["injected"]["reset"] == 1
