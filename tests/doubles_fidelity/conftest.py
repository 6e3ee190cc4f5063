"""Fixtures of the double-fidelity tests: the management API of the stack's first vault, reset after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.keyvault_double import KeyVaultDouble


@pytest.fixture
async def kv_double(http: aiohttp.ClientSession, stack_env: dict[str, str]) -> AsyncIterator[KeyVaultDouble]:
    double = KeyVaultDouble(http, stack_env["KEYVAULT_MANAGEMENT_URL"], stack_env["KEYVAULT_URL"])
    await double.token(stack_env["IDENTITY_ENDPOINT"], stack_env["IDENTITY_HEADER"])
    await double.reset()
    yield double
    await double.reset()
