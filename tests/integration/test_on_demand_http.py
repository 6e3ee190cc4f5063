"""The registered HTTP function `rotate_now`, driven with `func.HttpRequest` objects, against Azurite's queue,
the Key Vault double and PostgreSQL: an on-demand request rotates a secret that is not yet due, and every
bad request gets its own status and a message that echoes nothing it was sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.on_demand import MAX_BODY_BYTES
from tests.support.host import LocalFunctionsHost
from tests.support.stack import Postgres, outcomes, seed_role_secret, unique

pytestmark = pytest.mark.integration

# A value-like string a caller might paste by mistake; no answer may contain it.
PASTED = "pasted-by-mistake-Zq81x"


async def _post(host: LocalFunctionsHost, body: bytes | str) -> tuple[int, dict[str, object], str]:
    handler = host.functions["rotate_now"].get_user_function()
    raw = body.encode() if isinstance(body, str) else body
    request = func.HttpRequest(method="POST", url="http://localhost/api/rotate", body=raw, headers={})
    response: func.HttpResponse = await handler(request)
    text = response.get_body().decode()
    return response.status_code, json.loads(text), text


def test_rotate_now_is_an_http_post_with_function_key_auth(host: LocalFunctionsHost) -> None:
    # What the host reads: the function.json the app's indexing produces.
    bindings = json.loads(host.functions["rotate_now"].get_function_json())["bindings"]
    trigger = next(b for b in bindings if b["direction"] == "IN")
    assert trigger["type"] == "httpTrigger" and trigger["authLevel"] == "FUNCTION"
    assert trigger["methods"] == ["POST"] and trigger["route"] == "rotate"


async def test_on_demand_request_rotates_a_secret_that_is_not_due(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seeded = await seed_role_secret(vault, postgres, leak_check, "ondemand")
    far = datetime.now(UTC) + timedelta(days=200)
    await vault.update_secret_properties(seeded.name, seeded.version, expires_on=far)

    status, body, _ = await _post(host, json.dumps({"vault": stack_environ["KEYVAULT_URL"], "secret": seeded.name}))
    assert status == 202, body
    assert body["secret"] == seeded.name and isinstance(body["correlationId"], str)

    deliveries = await host.drain_queue(stack_environ["AzureWebJobsStorage"], stack_environ["ROTATION_QUEUE_NAME"])
    assert [d.error for d in deliveries] == [None]
    rotated = await vault.get_secret(seeded.name)
    leak_check.append(rotated.value or "")
    assert rotated.properties.version != seeded.version, "rotated although it expires in 200 days"
    assert await postgres.logs_in(seeded.role, rotated.value or "")
    statuses = [(o["status"], o["correlation_id"]) for o in outcomes(caplog)]
    assert statuses == [("RotationEnqueued", body["correlationId"]), ("SecretRotated", body["correlationId"])]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "must be JSON"),
        ('["a"]', "JSON object"),
        ('{"vault": "https://127.0.0.1:1"}', "'secret' must be"),
        ('{"secret": "db"}', "'vault' must be"),
        ('{"vault": "http://127.0.0.1:1", "secret": "db"}', "https URL"),
        ('{"vault": "https://127.0.0.1:1/secrets/x", "secret": "db"}', "no path"),
        ('{"vault": "https://127.0.0.1:1", "secret": "db_under"}', "secret name"),
        ('{"vault": "https://127.0.0.1:1", "secret": "db--rotation-pending"}', "pending record"),
        ('{"vault": "https://127.0.0.1:1", "secret": "' + "a" * 120 + '"}', "too long"),
        ('{"vault": "https://127.0.0.1:1", "secret": "db", "value": "' + PASTED + '"}', "unknown field"),
        ('{"vault": "https://127.0.0.1:1", "secret": "' + PASTED + '!"}', "secret name"),
    ],
)
async def test_bad_requests_answer_400_without_echoing_the_body(
    host: LocalFunctionsHost, body: bytes | str, expected: str
) -> None:
    status, answer, text = await _post(host, body)
    assert status == 400
    assert expected in str(answer["error"])
    assert PASTED not in text


async def test_vault_outside_the_allow_list_is_403_and_missing_secret_404(
    host: LocalFunctionsHost, stack_environ: dict[str, str]
) -> None:
    status, answer, _ = await _post(host, json.dumps({"vault": "https://other.vault.azure.net", "secret": "db"}))
    assert status == 403 and "ROTATION_ALLOWED_VAULTS" in str(answer["error"])

    missing = unique("missing")
    status, answer, _ = await _post(host, json.dumps({"vault": stack_environ["KEYVAULT_URL"], "secret": missing}))
    assert status == 404 and answer["secret"] == missing


async def test_oversized_body_is_refused_before_it_is_parsed(host: LocalFunctionsHost) -> None:
    status, answer, text = await _post(host, b'{"vault": "' + b"x" * MAX_BODY_BYTES + b'"}')
    assert status == 413 and str(MAX_BODY_BYTES) in str(answer["error"])
    assert "xxxx" not in text
