"""The conformance kit as pytest tests: subclass `RotatorConformance` and give it a `conformance_case`
fixture; every test below then runs for that rotator against the local stack.

    class TestMyRotator(RotatorConformance):
        @pytest.fixture
        def conformance_case(self) -> ConformanceCase:
            return ConformanceCase(rotator=MyRotator, seed=..., logs_in=...)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .case import ConformanceCase
from .kit import Kit
from .stack import load_stack_env


class RotatorConformance:
    @pytest.fixture
    def conformance_env(self) -> dict[str, str]:
        """The local stack's env file; override to point the kit elsewhere."""
        return load_stack_env()

    @pytest.fixture
    async def conformance(
        self, conformance_case: ConformanceCase, conformance_env: dict[str, str]
    ) -> AsyncIterator[Kit]:
        async with Kit.open(conformance_case, conformance_env) as kit:
            yield kit

    async def test_hooks_are_idempotent_and_accepts_is_a_real_login(self, conformance: Kit) -> None:
        await conformance.check_hooks()

    async def test_pending_record_first_and_verification_before_promotion(self, conformance: Kit) -> None:
        await conformance.check_rotation()

    async def test_resumes_after_a_failure_at_every_store_and_provider_call(self, conformance: Kit) -> None:
        await conformance.check_crash_and_resume()

    async def test_bad_tags_are_refused_and_nothing_rotates(self, conformance: Kit) -> None:
        await conformance.check_bad_tags()

    async def test_no_secret_value_in_logs_exceptions_or_outcome_events(self, conformance: Kit) -> None:
        # One rotation and one refusal, then every log record, hook exception and outcome event is searched.
        await conformance.check_rotation()
        await conformance.check_bad_tags()
        conformance.assert_no_leaks()
