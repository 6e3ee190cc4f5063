"""Every built-in rotator passes the conformance kit (secret_rotation/conformance) on the local stack."""

from __future__ import annotations

import pytest

from secret_rotation.conformance import ConformanceCase, RotatorConformance
from tests.conformance.cases import postgres_dual_case, postgres_role_case

pytestmark = pytest.mark.integration


class TestPostgresRole(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, stack_env: dict[str, str]) -> ConformanceCase:
        return postgres_role_case(stack_env)


class TestPostgresDualUser(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, stack_env: dict[str, str]) -> ConformanceCase:
        return postgres_dual_case(stack_env)
