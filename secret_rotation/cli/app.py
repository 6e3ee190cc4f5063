"""`secret-rotation`: the operator CLI's commands (click). Each parses, calls one operation, renders, and
exits with a documented code (docs/cli.md):

    0  done (plan: nothing misconfigured)
    1  failed, or plan found a misconfiguration
    2  usage error (click)
    3  refused, nothing changed (vault outside the allow-list, rollback impossible, confirmation declined)
    4  not done yet, try again (transient failure, another worker holds the secret)
    5  cannot run here (settings or the stack env file missing)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import click
from rich.markup import escape

from secret_rotation import stack_env
from secret_rotation.cli import render
from secret_rotation.cli.connect import (
    EnvironmentProblem,
    environment_settings,
    open_wiring,
    use_stack_env,
)
from secret_rotation.errors import RotationError, ScopeError
from secret_rotation.on_demand import Answer, BadRequestError, OnDemandRequest, secret_name, vault_url
from secret_rotation.operations.plan import Plan, plan_vault
from secret_rotation.operations.progress import ProgressStores
from secret_rotation.operations.rollback import Rollback, RollbackRefused, RollbackResult
from secret_rotation.operations.rotate_now import emergency, rotate_once, rotations_needed
from secret_rotation.operations.status import SecretStatus, secret_status
from secret_rotation.outcomes import Outcome, Status
from secret_rotation.ports import SecretStores
from secret_rotation.replay import DEFAULT_DEAD_LETTER_CONTAINER
from secret_rotation.replay import run as run_replay

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_RETRY, EXIT_ENVIRONMENT = 0, 1, 2, 3, 4, 5
# What each status of the HTTP-style answer of `rotate --enqueue` means as an exit code.
_ANSWER_EXIT = {202: EXIT_OK, 403: EXIT_REFUSED, 503: EXIT_RETRY}


@dataclass(frozen=True)
class Options:
    stack: bool


def _vault(_ctx: click.Context, _param: click.Parameter, raw: str) -> str:
    """A vault URL, or a bare vault name in Azure's public cloud."""
    try:
        return vault_url(raw if "://" in raw else f"https://{raw}.vault.azure.net")
    except BadRequestError as exc:
        raise click.BadParameter(str(exc)) from None


def _secret(_ctx: click.Context, _param: click.Parameter, raw: str) -> str:
    """A Key Vault secret name that can have a pending record (the HTTP function's rule)."""
    try:
        return secret_name(raw)
    except BadRequestError as exc:
        raise click.BadParameter(str(exc)) from None


VAULT = click.argument("vault", callback=_vault)
SECRET = click.argument("secret", callback=_secret)
JSON = click.option("--json", "as_json", is_flag=True, help="machine-readable output on stdout")


def _fail(message: str, code: int) -> NoReturn:
    render.err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    sys.exit(code)


def _run(options: Options, work: Coroutine[Any, Any, T]) -> T:
    """Runs one operation: environment problems exit 5, refusals 3, failures 1 (4 when worth retrying)."""
    try:
        if options.stack:
            use_stack_env(stack_env.default_path())
        return asyncio.run(work)
    except EnvironmentProblem as exc:
        _fail(str(exc), EXIT_ENVIRONMENT)
    except (ScopeError, RollbackRefused) as exc:
        _fail(str(exc), EXIT_REFUSED)
    except RotationError as exc:
        _fail(str(exc), EXIT_RETRY if exc.retryable else EXIT_FAILED)
    finally:
        work.close()  # harmless after it ran; silences "never awaited" when setup failed first


def _exit_for(outcome: Outcome) -> int:
    if outcome.status is Status.ROTATED:
        return EXIT_OK
    if outcome.retryable or outcome.status is Status.DEFERRED:
        return EXIT_RETRY
    return EXIT_FAILED


def _progress(stores: SecretStores) -> SecretStores:
    """The engine's stores, reporting each protocol step as Key Vault records it."""
    return ProgressStores(stores, render.progress)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--stack",
    is_flag=True,
    help=f"use the local stack: read its env file (${stack_env.ENV_VAR}, default .local/stack.env)",
)
@click.option("-v", "--verbose", is_flag=True, help="also log every outcome line on stderr")
@click.pass_context
def cli(ctx: click.Context, stack: bool, verbose: bool) -> None:
    """Operate the Key Vault secret rotation service: plan, rotate, status, emergency, rollback, replay."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    # Outcomes are rendered from their objects; their log lines would only repeat them unless asked for.
    # Restored when the command ends, so an in-process caller (tests, a REPL) keeps its own logging.
    service_logger = logging.getLogger("secret_rotation")
    ctx.call_on_close(lambda level=service_logger.level: service_logger.setLevel(level))
    service_logger.setLevel(logging.INFO if verbose else logging.CRITICAL)
    ctx.obj = Options(stack=stack or stack_env.ENV_VAR in os.environ)


@cli.command()
@VAULT
@JSON
@click.pass_obj
def plan(options: Options, vault: str, as_json: bool) -> None:
    """Dry run over VAULT: every secret with rotation tags, whether and when it rotates, with which rotator,
    and every misconfiguration. Reads properties only, never a value. Exits 1 if anything is misconfigured."""

    async def work() -> Plan:
        async with open_wiring() as wiring:
            return await plan_vault(wiring.stores.for_vault(vault), wiring.registry, wiring.scopes)

    result = _run(options, work())
    if as_json:
        render.as_json(result, ok=result.ok)
    else:
        render.plan(result)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@cli.command()
@VAULT
@SECRET
@click.option("--enqueue", is_flag=True, help="queue it for the deployed worker instead of rotating here")
@JSON
@click.pass_obj
def rotate(options: Options, vault: str, secret: str, enqueue: bool, as_json: bool) -> None:
    """Rotate SECRET now, due or not, through the engine in this process (progress on stderr), or with
    --enqueue as the HTTP function does."""

    async def work() -> Outcome | Answer:
        async with open_wiring() as wiring:
            wiring.scopes.check_vault(vault)  # refused (exit 3) before anything, like the HTTP function's 403
            if enqueue:
                return await wiring.on_demand().enqueue(OnDemandRequest(vault, secret))
            return await rotate_once(wiring.engine(_progress(wiring.stores)), wiring.reporter, vault, secret)

    result = _run(options, work())
    if isinstance(result, Answer):
        render.as_json(result.body, status=result.status) if as_json else render.answer(result)
        sys.exit(_ANSWER_EXIT.get(result.status, EXIT_FAILED))
    render.as_json(result) if as_json else render.outcome(result)
    sys.exit(_exit_for(result))


@cli.command()
@VAULT
@SECRET
@JSON
@click.pass_obj
def status(options: Options, vault: str, secret: str, as_json: bool) -> None:
    """History of SECRET from its versions and tags, any pending rotation and its step, the last outcome.
    Reads properties only. Exits 1 if the secret does not exist."""

    async def work() -> SecretStatus:
        async with open_wiring() as wiring:
            stuck_after = timedelta(minutes=wiring.settings.stuck_after_minutes)
            return await secret_status(wiring.stores.for_vault(vault), secret, stuck_after=stuck_after)

    result = _run(options, work())
    render.as_json(result) if as_json else render.status(result)
    sys.exit(EXIT_OK if result.exists else EXIT_FAILED)


@cli.command(name="emergency")
@VAULT
@SECRET
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@JSON
@click.pass_obj
def emergency_command(options: Options, vault: str, secret: str, yes: bool, as_json: bool) -> None:
    """SECRET's credential is compromised: rotate now; a dual-credential secret is rotated twice, so both
    provider credentials, the exposed one included, are replaced when it finishes."""

    async def passes() -> int:
        async with open_wiring() as wiring:
            wiring.scopes.check_vault(vault)
            return await rotations_needed(wiring.stores.for_vault(vault), wiring.registry, secret)

    count = _run(options, passes())
    if not yes:
        what = "both credentials (two rotations)" if count == 2 else "its credential"
        if not click.confirm(f"Replace {what} of {secret} in {vault} now?", err=True):
            _fail("not confirmed; nothing changed", EXIT_REFUSED)

    async def work() -> list[Outcome]:
        async with open_wiring() as wiring:
            return await emergency(
                engine=wiring.engine(_progress(wiring.stores)),
                stores=wiring.stores,
                registry=wiring.registry,
                reporter=wiring.reporter,
                vault_url=vault,
                name=secret,
            )

    results = _run(options, work())
    if as_json:
        render.as_json({"outcomes": results, "credentialsReplaced": _replaced(results, count)})
    else:
        for result in results:
            render.outcome(result)
    sys.exit(EXIT_OK if _replaced(results, count) else _exit_for(results[-1]))


def _replaced(results: list[Outcome], needed: int) -> bool:
    return len(results) == needed and all(result.status is Status.ROTATED for result in results)


@cli.command()
@VAULT
@SECRET
@JSON
@click.pass_obj
def rollback(options: Options, vault: str, secret: str, as_json: bool) -> None:
    """Dual-credential SECRET: make the previous credential current again, as a new version, after a real
    login with it. Single-credential secrets are refused (exit 3): use `emergency`."""

    async def work() -> RollbackResult:
        async with open_wiring() as wiring:
            return await Rollback(wiring.stores, wiring.registry, wiring.scopes, wiring.lock, wiring.reporter).run(
                vault, secret
            )

    result = _run(options, work())
    render.as_json(result) if as_json else render.outcome(result.outcome)
    sys.exit(EXIT_OK)


@cli.command()
@click.argument("source", type=click.Choice(["poison", "dead-letters"]))
@click.option("--container", default=DEFAULT_DEAD_LETTER_CONTAINER, show_default=True, help="dead-letter container")
@JSON
@click.pass_obj
def replay(options: Options, source: str, container: str, as_json: bool) -> None:
    """Put poison messages (SOURCE poison) or Event Grid dead letters (SOURCE dead-letters) back on the
    rotation queue; each is removed only after it is re-queued, and replaying twice is harmless."""

    async def work() -> int:
        environment_settings()  # missing settings exit 5, like every command
        return await run_replay(source, container, dict(os.environ))

    count = _run(options, work())
    if as_json:
        render.as_json({"source": source, "replayed": count})
    else:
        render.out.print(f"replayed {count} event(s) from {source} onto the rotation queue")
    sys.exit(EXIT_OK)


def main() -> None:
    cli()
