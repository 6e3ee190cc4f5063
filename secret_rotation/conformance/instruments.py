"""How the conformance kit watches a rotation without changing it: a store that records (and can fail)
every call the engine makes, a subclass of the rotator under test that records its provider calls and
the text of every exception its hooks raise, and a log handler. The engine itself runs unmodified.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from secret_rotation.errors import ConfigurationError, TransientError
from secret_rotation.pending import pending_name
from secret_rotation.ports import SecretStore, SecretStores, StoredSecret
from secret_rotation.rotator import ApplyRequest, Credential, Rotator
from secret_rotation.secret_value import SecretValue

if TYPE_CHECKING:
    from secret_rotation.tags import RotationConfig

T = TypeVar("T")

# Secret values shorter than this are not searched for (they would match ordinary text).
MIN_VALUE_LENGTH = 8
_READS = ("get", "list", "newest", "read")


class InjectedFault(TransientError):
    """A failure the kit raises at a chosen store or provider call, as a crash or outage would."""


@dataclass(frozen=True)
class Fault:
    index: int  # which call of the run, counted from 0
    when: Literal["before", "after"]  # before it takes effect, or after (its result is lost)


class Watch:
    """Every secret value the kit has seen, and every text that must not contain one."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.texts: list[tuple[str, str]] = []  # (where, text)

    def remember(self, *values: SecretValue | None) -> None:
        for value in values:
            if value is not None and len(value.reveal()) >= MIN_VALUE_LENGTH:
                self.values.add(value.reveal())

    def leaks(self) -> list[str]:
        """Where values appeared (each place once), never the values themselves."""
        return sorted({where for where, text in self.texts for value in self.values if value in text})


class LogCapture(logging.Handler):
    def __init__(self, watch: Watch) -> None:
        super().__init__(level=logging.DEBUG)
        self._watch = watch

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), str(getattr(record, "outcome", ""))]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        self._watch.texts.append((f"log record of logger {record.name!r}", "\n".join(parts)))


@dataclass
class Run:
    """One engine run through the kit: its calls in order, and what the kit found wrong on the way."""

    secret_name: str
    target_id: str
    rotator: Rotator  # the plain rotator, to read values the engine writes
    logs_in: Callable[[Credential], Awaitable[bool]]
    pending_exists: bool
    fault: Fault | None = None
    calls: list[str] = field(default_factory=list)
    writes: set[int] = field(default_factory=set)  # indices of calls that change something
    applied: bool = False  # an `apply` returned
    violations: list[str] = field(default_factory=list)

    async def call(self, label: str, write: bool, invoke: Callable[[], Awaitable[T]]) -> T:
        index = len(self.calls)
        self.calls.append(label)
        if write:
            self.writes.add(index)
        if self.fault == Fault(index, "before"):
            raise InjectedFault(f"conformance kit: injected failure before call {index} ({label})")
        result = await invoke()
        if self.fault == Fault(index, "after"):
            raise InjectedFault(f"conformance kit: injected failure after call {index} ({label})")
        return result

    def _parse(self, value: SecretValue) -> Credential | None:
        try:
            return self.rotator.parse(self.target_id, value)
        except ConfigurationError:
            return None

    async def before_write(self, name: str | None, value: SecretValue) -> None:
        """Checks the provider's state at the two moments the protocol is about."""
        if name == pending_name(self.secret_name) and not self.pending_exists:
            self.pending_exists = True
            new = self._parse(value)
            if new is not None and not self.applied and await self.logs_in(new):
                self.violations.append(
                    "the provider already accepted the new credential before the pending record was stored "
                    "(is it applied in generate?)"
                )
        elif name == self.secret_name:
            promoted = self._parse(value)
            if promoted is None or not await self.logs_in(promoted):
                self.violations.append(
                    "a credential the provider does not accept was promoted: verification before promotion "
                    "failed (does accepts really log in?)"
                )

    def before_apply(self) -> None:
        if not self.pending_exists:
            self.violations.append("apply ran before the pending record was stored")


class RecordingStore:
    """The `SecretStore` port around the real Key Vault adapter; every coroutine method is recorded."""

    def __init__(self, inner: SecretStore, kit: KitHooks) -> None:
        self._inner = inner
        self._kit = kit

    @property
    def vault_url(self) -> str:
        return self._inner.vault_url

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)
        if not inspect.iscoroutinefunction(target):
            return target

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            return await self._kit.store_call(attr, target, args, kwargs)

        return recorded


class RecordingStores:
    def __init__(self, inner: SecretStores, kit: KitHooks) -> None:
        self._inner = inner
        self._kit = kit

    def for_vault(self, vault_url: str) -> SecretStore:
        return cast(SecretStore, RecordingStore(self._inner.for_vault(vault_url), self._kit))


class KitHooks:
    """The kit's side of the instruments: the run in progress and the watch."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.run: Run | None = None

    async def store_call(self, attr: str, target: Callable[..., Awaitable[Any]], args: Any, kwargs: Any) -> Any:
        values = [a for a in (*args, *kwargs.values()) if isinstance(a, SecretValue)]
        self.watch.remember(*values)
        name = args[0] if args and isinstance(args[0], str) else kwargs.get("name")
        run = self.run
        if run is None:
            return await target(*args, **kwargs)
        if values:
            await run.before_write(name, values[0])
        write = bool(values) or not attr.startswith(_READS)
        result = await run.call(f"store.{attr}({name})", write, lambda: target(*args, **kwargs))
        if isinstance(result, StoredSecret):
            self.watch.remember(result.value)
        return result

    def text_of(self, hook: str, exc: BaseException) -> None:
        self.watch.texts.append((f"exception raised by {hook}", "".join(traceback.format_exception(exc))))


def instrumented(cls: type[Rotator], kit: KitHooks) -> type[Rotator]:
    """A subclass of the rotator under test with the same name and behaviour, watched by the kit."""

    def sync(hook: str) -> Callable[..., Any]:
        original = getattr(cls, hook)

        def watched(self: Rotator, *args: Any) -> Any:
            try:
                result = original(self, *args)
            except Exception as exc:
                kit.text_of(hook, exc)
                raise
            kit.watch.remember(result if isinstance(result, SecretValue) else getattr(result, "secret", None))
            return result

        return watched

    async def apply(self: Rotator, request: ApplyRequest) -> object:
        # Returned as is: a rotator whose provider issues the credential returns it from apply.
        kit.watch.remember(request.new.secret, request.current.secret, request.admin.secret if request.admin else None)

        def applying() -> Awaitable[object]:
            return _watched_call(kit, "apply", cls.apply(self, request))

        run = kit.run
        if run is None:
            result = await applying()
        else:
            run.before_apply()
            result = await run.call("rotator.apply", True, applying)
            run.applied = True
        kit.watch.remember(getattr(result, "secret", None))
        return result

    async def accepts(self: Rotator, config: RotationConfig, credential: Credential) -> bool:
        kit.watch.remember(credential.secret)
        run = kit.run
        if run is not None:
            return await run.call(
                "rotator.accepts", False, lambda: _watched_call(kit, "accepts", cls.accepts(self, config, credential))
            )
        return await _watched_call(kit, "accepts", cls.accepts(self, config, credential))

    namespace: dict[str, Any] = {hook: sync(hook) for hook in ("generate", "render", "parse", "validate", "scope")}
    namespace.update(apply=apply, accepts=accepts, name=cls.name, __module__=cls.__module__)
    return type(cls.__name__, (cls,), namespace)


async def _watched_call(kit: KitHooks, hook: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except Exception as exc:
        kit.text_of(hook, exc)
        raise
