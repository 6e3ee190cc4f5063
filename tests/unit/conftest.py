from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from secret_rotation.engine import RotationEngine
from secret_rotation.events import EventSchema, SecretEvent, SecretEventType
from secret_rotation.registry import RotatorRegistry
from secret_rotation.scopes import Scopes
from secret_rotation.secret_value import SecretValue
from tests.unit.fakes import VAULT, FakeProvider, InMemoryLock, InMemorySecretStore, InMemoryStores, rotators_for

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SCOPE = "fake://provider"


class World:
    def __init__(self) -> None:
        self.provider = FakeProvider()
        self.store = InMemorySecretStore()
        self.registry = registry = RotatorRegistry(builtins={})
        for rotator in rotators_for(self.provider):
            registry.register(rotator)
        self.scopes = Scopes((VAULT,), (SCOPE,))
        self.lock = InMemoryLock()
        self.now = NOW
        self.engine = RotationEngine(
            InMemoryStores(self.store), registry, self.scopes, self.lock, clock=lambda: self.now
        )
        self._events = 0

    async def seed_single(
        self, name: str = "db", *, days: str = "60", expires_in: int = 10, tags: dict[str, str] | None = None
    ) -> str:
        self.provider.passwords["app"] = "old-password-1"
        stored = await self.store.set(
            name,
            SecretValue("old-password-1"),
            tags={
                "RotatorType": "fake-single",
                "CredentialId": "app",
                "ProviderAddress": f"{SCOPE}/db1",
                "ValidityPeriodDays": days,
                **(tags or {}),
            },
            expires_on=NOW + timedelta(days=expires_in),
        )
        return stored.version

    async def seed_dual(self, name: str = "dual") -> str:
        self.provider.passwords.update({"blue": "blue-password-1", "green": "green-password-1", "admin": "adm-1"})
        await self.store.set("admin", SecretValue("adm-1"), tags={"CredentialId": "admin"})
        stored = await self.store.set(
            name,
            SecretValue("blue-password-1"),
            tags={
                "RotatorType": "fake-dual",
                "CredentialId": "blue",
                "AlternateCredentialId": "green",
                "AdminSecretName": "admin",
                "ProviderAddress": f"{SCOPE}/db1",
                "ValidityPeriodDays": "90",
            },
            expires_on=NOW + timedelta(days=5),
        )
        return stored.version

    async def seed(self, pattern: str) -> tuple[str, str]:
        """(secret name, version) of a due secret of the given pattern."""
        if pattern == "single":
            return "db", await self.seed_single()
        return "dual", await self.seed_dual()

    def clock_days(self, days: int) -> None:
        self.now += timedelta(days=days)

    def event(self, name: str, version: str | None, vault: str = VAULT) -> SecretEvent:
        self._events += 1
        return SecretEvent(
            event_id=f"event-{self._events}",
            event_type=SecretEventType.NEAR_EXPIRY,
            schema=EventSchema.EVENT_GRID,
            vault_url=vault,
            secret_name=name,
            version=version,
        )


@pytest.fixture
def world() -> World:
    return World()
