"""Secret hygiene, tags, scopes, registry and retries: the small pieces the engine stands on."""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.core.rest._http_response_impl import HttpResponseImpl

from secret_rotation.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidEventError,
    ScopeError,
    SecretDisabledError,
    TransientError,
    UnknownRotatorError,
)
from secret_rotation.keyvault_store import translate
from secret_rotation.registry import RotatorRegistry
from secret_rotation.retries import RetryPolicy
from secret_rotation.rotation_queue import StorageJobQueue
from secret_rotation.scopes import Scopes
from secret_rotation.secret_value import Redactor, SecretValue
from secret_rotation.tags import RotationConfig
from tests.unit.fakes import FakeSingleRotator


def test_secret_value_shows_nothing_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    value = SecretValue("hunter2-super-secret")
    logging.getLogger("test").warning("value %s %r", value, value)
    shown = [repr(value), str(value), f"{value}", f"{value!r}", caplog.text]
    assert all("hunter2" not in text for text in shown)
    with pytest.raises(TypeError):
        pickle.dumps(value)


def test_redactor_scrubs_longest_values_first() -> None:
    redactor = Redactor()
    redactor.remember(SecretValue("abc"), SecretValue("abcdef"), None)
    assert redactor.scrub("x abcdef y abc") == "x *** y ***"


def test_rotation_config_reads_microsoft_sample_tags() -> None:
    config = RotationConfig.from_tags(
        "s",
        {"RotatorType": "r", "CredentialId": "key1", "ProviderAddress": "/subscriptions/x", "ValidityPeriodDays": "60"},
    )
    assert (config.credential_id, config.provider_address, config.validity_days) == ("key1", "/subscriptions/x", 60)


@pytest.mark.parametrize("days", ["30", "0", "-5", "3651"])
def test_validity_periods_that_cannot_work_are_rejected(days: str) -> None:
    tags = {"RotatorType": "r", "CredentialId": "c", "ProviderAddress": "p", "ValidityPeriodDays": days}
    with pytest.raises(ConfigurationError, match="ValidityPeriodDays"):
        RotationConfig.from_tags("s", tags)


def test_scopes_match_only_at_path_boundaries() -> None:
    scopes = Scopes(("https://kv.vault.azure.net",), ("/subscriptions/s/resourceGroups/app",))
    scopes.check_vault("https://KV.vault.azure.net/")
    scopes.check_provider("s", "/subscriptions/s/resourceGroups/app/providers/Microsoft.Storage/storageAccounts/a")
    with pytest.raises(ScopeError):
        scopes.check_provider("s", "/subscriptions/s/resourceGroups/app2/providers/x")
    with pytest.raises(ScopeError):
        scopes.check_vault("https://kv2.vault.azure.net")


def test_registry_rejects_duplicates_and_names_known_rotators() -> None:
    registry = RotatorRegistry()
    registry.register(FakeSingleRotator)
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(FakeSingleRotator)
    with pytest.raises(UnknownRotatorError, match="postgres-role"):
        registry.get("nope")
    assert isinstance(registry.get(FakeSingleRotator), FakeSingleRotator)
    assert registry.get("postgres-role").name == "postgres-role"


def _http_error(status: int, headers: dict[str, str], error: dict[str, Any] | None = None) -> HttpResponseError:
    """An SDK error as azure-core builds it from a response; `error` is Key Vault's `{"code", "message",
    "innererror"}` body."""
    response = HttpResponseImpl(
        request=HttpRequest("GET", "https://kv/secrets/x"),
        internal_response=None,
        status_code=status,
        headers=headers,
        reason="",
        content_type="application/json",
        stream_download_generator=None,
    )
    response._content = json.dumps({"error": error} if error else {}).encode()
    return HttpResponseError(response=response)


async def test_retries_honour_retry_after_then_succeed() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    errors = [_http_error(429, {"Retry-After": "7"}), _http_error(503, {})]

    async def operation() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    assert await RetryPolicy(sleep=sleep).call(operation) == "ok"
    assert sleeps[0] == 7.0 and len(sleeps) == 2


async def test_permanent_errors_are_not_retried_and_budgets_stop_retrying() -> None:
    attempts = 0
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def not_found() -> None:
        nonlocal attempts
        attempts += 1
        raise ResourceNotFoundError("gone")

    with pytest.raises(ResourceNotFoundError):
        await RetryPolicy(sleep=sleep).call(not_found)
    assert attempts == 1

    async def throttled() -> None:
        raise _http_error(429, {"Retry-After": "100"})

    # A Retry-After longer than the budget stops at once instead of sleeping past it.
    with pytest.raises(HttpResponseError):
        await RetryPolicy(sleep=sleep, budget_seconds=30).call(throttled)
    assert sleeps == []


async def test_throttling_without_retry_after_backs_off_1_2_4_8_16_seconds_with_jitter() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def throttled() -> None:
        raise _http_error(
            429, {}, {"code": "Throttled", "message": "Request was not processed because too many requests"}
        )

    with pytest.raises(HttpResponseError):
        await RetryPolicy(sleep=sleep, budget_seconds=60).call(throttled)
    assert len(sleeps) == 5
    for waited, base in zip(sleeps, (1, 2, 4, 8, 16), strict=True):
        assert base <= waited <= base + 1, sleeps


async def test_throttling_backoff_stops_within_the_budget() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def throttled() -> None:
        raise _http_error(429, {})

    with pytest.raises(HttpResponseError):
        await RetryPolicy(sleep=sleep, budget_seconds=10).call(throttled)
    assert sleeps and max(sleeps) < 10, "no wait that would end past the budget"


@pytest.mark.parametrize(
    ("status", "error", "kind", "retryable", "text"),
    [
        (
            403,
            {
                "code": "Forbidden",
                "message": "Operation get is not allowed on a disabled secret.",
                "innererror": {"code": "SecretDisabled"},
            },
            SecretDisabledError,
            False,
            "newest version is disabled",
        ),
        (
            403,
            {"code": "Forbidden", "message": "Caller is not authorized", "innererror": {"code": "ForbiddenByRbac"}},
            AccessDeniedError,
            False,
            "access denied",
        ),
        (
            409,
            {
                "code": "Conflict",
                "message": "Secret x is currently in a deleted but recoverable state",
                "innererror": {"code": "ObjectIsDeletedButRecoverable"},
            },
            ConfigurationError,
            False,
            "recover or purge",
        ),
        (409, {"code": "Conflict", "message": "There was a conflict"}, TransientError, True, "conflict, will retry"),
    ],
)
def test_key_vault_errors_are_classified_by_their_codes(
    status: int, error: dict[str, Any], kind: type[Exception], retryable: bool, text: str
) -> None:
    translated = translate(_http_error(status, {}, error), "get", "db")
    assert type(translated) is kind and translated.retryable is retryable
    assert text in str(translated)


async def test_an_event_too_large_for_the_queue_is_refused_permanently() -> None:
    class TooLarge:
        queue_name = "rotation-jobs"

        async def create_queue(self) -> None:
            return None

        async def send_message(self, body: str) -> None:
            raise _http_error(413, {}, {"code": "RequestBodyTooLarge", "message": "The request body is too large"})

    queue = StorageJobQueue(TooLarge(), RetryPolicy())  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError) as refused:
        await queue.enqueue("x" * 70_000)
    assert not refused.value.retryable
    assert "too large to enqueue" in str(refused.value) and "RequestBodyTooLarge" in str(refused.value)
