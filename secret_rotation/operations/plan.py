"""`plan`: a dry run over one vault, from the secrets' properties alone (one listing, no value read).

For every secret with rotation tags: will it rotate, when (Key Vault raises `SecretNearExpiry`
`NEAR_EXPIRY_DAYS` before expiry; the sweep enqueues it from then on), with which rotator, and every
reason it would be refused. The checks are the engine's own (`preflight.configure` / `preflight.problems`),
plus what only a whole-vault view shows (no expiry, a disabled current version, a missing admin secret),
plus the registry's own: allowed plugins that cannot be loaded, installed plugins that are not allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from secret_rotation.errors import RotationError
from secret_rotation.pending import PENDING_SUFFIX, Step, pending_name
from secret_rotation.ports import SecretStore, SecretSummary
from secret_rotation.preflight import configure, problems
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import Pattern
from secret_rotation.scopes import Scopes
from secret_rotation.tags import NEAR_EXPIRY_DAYS, Tag, rotator_for

# A secret is managed by the service when it carries any of these; the first four are required.
REQUIRED_TAGS = (Tag.ROTATOR_TYPE, Tag.CREDENTIAL_ID, Tag.PROVIDER_ADDRESS, Tag.VALIDITY_PERIOD_DAYS)
ROTATION_TAGS = (*REQUIRED_TAGS, Tag.ALTERNATE_CREDENTIAL_ID, Tag.ADMIN_SECRET_NAME)


@dataclass(frozen=True)
class PlanEntry:
    name: str
    rotator: str | None
    pattern: str | None
    expires_on: datetime | None
    due_on: datetime | None
    when: str  # "due now", "from <date>", "in progress (<step>)" or "never"
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Plan:
    vault_url: str
    entries: tuple[PlanEntry, ...]
    untagged: tuple[str, ...] = field(default=())
    plugin_problems: tuple[str, ...] = ()  # allowed plugins that cannot be loaded: a misconfiguration
    plugins_not_allowed: tuple[str, ...] = ()  # installed but not in ROTATION_ALLOWED_PLUGINS: information

    @property
    def ok(self) -> bool:
        return all(entry.ok for entry in self.entries) and not self.plugin_problems


def is_managed(tags: Mapping[str, str]) -> bool:
    return any(tags.get(tag, "").strip() for tag in ROTATION_TAGS)


def _active_pending(summaries: list[SecretSummary]) -> dict[str, str]:
    """secret name -> step of its active pending record (tags only; the record's value is never read)."""
    active = {}
    for summary in summaries:
        owner = summary.tags.get(Tag.PENDING_FOR)
        step = summary.tags.get(Tag.PENDING_STEP)
        if owner and step and step != Step.COMPLETED.value:
            active[owner] = step
    return active


def _configuration_problems(
    summary: SecretSummary, registry: RotatorRegistry, scopes: Scopes, names: set[str]
) -> tuple[list[str], str | None]:
    """Every reason the engine would refuse the secret's tags, and the rotator's pattern when it has one."""
    name, tags = summary.name, summary.tags
    found = [f"missing tag {tag}" for tag in REQUIRED_TAGS if not tags.get(tag, "").strip()]
    if found == [f"missing tag {Tag.ROTATOR_TYPE}"] and rotator_for(tags):
        found = []  # the rotator is implied by ProviderAddress (Microsoft's tutorial tags)
    if found:
        try:
            pending_name(name)
        except RotationError as exc:
            found.append(str(exc))
        return found, None
    try:
        config, rotator = configure(name, tags, registry, scopes)
    except RotationError as exc:
        return [str(exc)], None
    found += problems(name, tags, config, rotator)
    if rotator.pattern is Pattern.SINGLE and config.alternate_credential_id:
        found.append(
            f"conflicting tags: {Tag.ALTERNATE_CREDENTIAL_ID} is set but {rotator.name} is a "
            "single-credential rotator, so it would be ignored"
        )
    admin = config.admin_secret_name
    if admin and admin not in names:
        found.append(f"{Tag.ADMIN_SECRET_NAME} {admin} does not exist in this vault")
    return found, rotator.pattern.value


def plan_entry(
    summary: SecretSummary,
    registry: RotatorRegistry,
    scopes: Scopes,
    *,
    names: set[str],
    pending_step: str | None,
    now: datetime,
) -> PlanEntry:
    found, pattern = _configuration_problems(summary, registry, scopes, names)
    if summary.expires_on is None:
        found.append("no expiry date: Key Vault raises no near-expiry event and the sweep never picks it up")
    if not summary.enabled:
        found.append("the current version is disabled: the rotation cannot read it")
    due_on = summary.expires_on - timedelta(days=NEAR_EXPIRY_DAYS) if summary.expires_on else None
    if pending_step:
        when = f"in progress ({pending_step})"
    elif found or due_on is None:
        when = "never"
    elif due_on <= now:
        when = "due now"
    else:
        when = f"from {due_on:%Y-%m-%d %H:%M} UTC"
    rotator_name = rotator_for(summary.tags)
    return PlanEntry(summary.name, rotator_name, pattern, summary.expires_on, due_on, when, tuple(found))


async def plan_vault(
    store: SecretStore,
    registry: RotatorRegistry,
    scopes: Scopes,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Plan:
    scopes.check_vault(store.vault_url)
    summaries = [summary async for summary in store.list_secrets()]
    names = {summary.name for summary in summaries}
    pending = _active_pending(summaries)
    now = clock()
    entries, untagged = [], []
    for summary in sorted(summaries, key=lambda s: s.name):
        if summary.name.endswith(PENDING_SUFFIX) or Tag.PENDING_FOR in summary.tags:
            continue  # the service's own records; shown through the secret they belong to
        if not is_managed(summary.tags):
            untagged.append(summary.name)
            continue
        entries.append(
            plan_entry(summary, registry, scopes, names=names, pending_step=pending.get(summary.name), now=now)
        )
    return Plan(
        store.vault_url,
        tuple(entries),
        tuple(untagged),
        plugin_problems=tuple(registry.plugin_problems().values()),
        plugins_not_allowed=tuple(f"{name} ({package})" for name, package in registry.refused().items()),
    )
