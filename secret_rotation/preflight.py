"""Preflight: everything that could make a step after `apply` fail, checked before the pending record
is created (engine, on the path: load -> decide -> **preflight** -> create -> apply ...).

Two parts, so the operator's `plan` dry run can reuse the first without touching Key Vault:

- pure checks (no I/O): the secret's tags parse into a `RotationConfig` the rotator accepts, inside the
  allowed scopes; the promoted version's tags and the pending record's tags fit Key Vault's tag limits;
  the names fit. `configure` and `problems` / `check` are plain functions.
- I/O check: `check_write_access` proves the identity may update a secret, with a properties update
  that changes nothing (docs/protocol.md, "Preflight", says what that proves and what it cannot). The
  engine runs it on the secret before the pending record is created, and on the pending record right
  after (before `apply`).

Key Vault's limits, from Microsoft's documentation (articles/key-vault/secrets/about-secrets.md, "Secret
tags"): "Key Vault supports up to 15 tags, each of which can have a 256 character name and a 256
character value." and (same page) the content type's "maximum length of this field is 255 characters".
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import AccessDeniedError, ConfigurationError
from .pending import PENDING_SUFFIX, Step, pending_name, pending_tags
from .ports import SecretStore
from .registry import RotatorRegistry
from .rotator import Rotator
from .scopes import Scopes
from .tags import RotationConfig, Tag

MAX_TAGS = 15
MAX_TAG_NAME = 256
MAX_TAG_VALUE = 256
MAX_CONTENT_TYPE = 255
# Tags every promoted version gets on top of the secret's own (see `promoted_tags`).
BOOKKEEPING_TAGS = (Tag.ROTATION_ID, Tag.ROTATED_FROM_VERSION)
# What a secret may carry, rotation tags (RotatorType, CredentialId, ...) included: docs/tags.md.
USER_TAG_BUDGET = MAX_TAGS - len(BOOKKEEPING_TAGS)
# Longest ids the service writes into tags: a rotation id is a uuid4 hex, a version id is 32 hex digits.
_ID_PLACEHOLDER = "0" * 32


def promoted_tags(
    current_tags: Mapping[str, str],
    rotator: Rotator,
    config: RotationConfig,
    *,
    credential_id: str,
    rotation_id: str,
    from_version: str,
) -> dict[str, str]:
    """The promoted version's tags: carried over, the rotator's changes, the credential the new version
    holds (whoever named it: a provider may, as Graph does), then the bookkeeping tags."""
    return {
        **current_tags,
        **rotator.next_tags(config),
        Tag.CREDENTIAL_ID: credential_id,
        Tag.ROTATION_ID: rotation_id,
        Tag.ROTATED_FROM_VERSION: from_version,
    }


def configure(
    secret_name: str, tags: Mapping[str, str], registry: RotatorRegistry, scopes: Scopes
) -> tuple[RotationConfig, Rotator]:
    """The secret's rotation settings and its rotator, or a ConfigurationError saying why not (pure)."""
    config = RotationConfig.from_tags(secret_name, tags)
    rotator = registry.get(config.rotator_type)
    rotator.validate(config)
    scopes.check_provider(secret_name, rotator.scope(config))
    return config, rotator


def tag_problems(what: str, tags: Mapping[str, str]) -> list[str]:
    found = []
    if len(tags) > MAX_TAGS:
        found.append(f"{what} would carry {len(tags)} tags, Key Vault allows {MAX_TAGS}")
    found += [
        f"{what}: tag name {name[:40]!r}... is longer than {MAX_TAG_NAME} characters"
        for name in tags
        if len(name) > MAX_TAG_NAME
    ]
    found += [
        f"{what}: tag {name[:40]!r} has a value longer than {MAX_TAG_VALUE} characters"
        for name, value in tags.items()
        if len(value) > MAX_TAG_VALUE
    ]
    return found


def problems(
    secret_name: str,
    tags: Mapping[str, str],
    config: RotationConfig,
    rotator: Rotator,
    *,
    content_type: str | None = None,
) -> list[str]:
    """Every reason promotion or completion would be refused by Key Vault, from properties alone."""
    found = []
    try:
        pending_name(secret_name)
    except ConfigurationError as exc:
        found.append(str(exc))
    if secret_name.endswith(PENDING_SUFFIX):
        found.append(f"{secret_name} is a pending record, not a secret to rotate")
    target = rotator.target_credential_id(config)
    promoted = promoted_tags(
        tags, rotator, config, credential_id=target, rotation_id=_ID_PLACEHOLDER, from_version=_ID_PLACEHOLDER
    )
    promoted_problems = tag_problems(f"secret {secret_name}'s promoted version", promoted)
    if len(promoted) > MAX_TAGS:
        own = len([name for name in tags if name not in BOOKKEEPING_TAGS])
        promoted_problems[0] += f" (a rotated secret may carry at most {USER_TAG_BUDGET} tags of its own, it has {own})"
    found += promoted_problems
    record = pending_tags(secret_name, _ID_PLACEHOLDER, _ID_PLACEHOLDER, target, Step.COMPLETED)
    found += tag_problems(f"secret {secret_name}'s pending record", record)
    if content_type is not None and len(content_type) > MAX_CONTENT_TYPE:
        found.append(f"secret {secret_name}: content type longer than {MAX_CONTENT_TYPE} characters")
    return found


def check(
    secret_name: str,
    tags: Mapping[str, str],
    config: RotationConfig,
    rotator: Rotator,
    *,
    content_type: str | None = None,
) -> None:
    found = problems(secret_name, tags, config, rotator, content_type=content_type)
    if found:
        raise ConfigurationError("preflight: " + "; ".join(found))


async def check_write_access(store: SecretStore, secret_name: str, version: str, *, needed_for: str) -> None:
    """Prove the identity may update a secret: a properties update of `version` that changes nothing.

    It needs `Microsoft.KeyVault/vaults/secrets/update/action` on that secret, so per-secret role
    assignments that leave it out are caught before the provider changes. For the pending record that
    is exactly what its later steps need; for the secret it stands in for `setSecret/action` (the
    promotion's CREATE), which no request can prove without writing a version.
    """
    try:
        await store.update(secret_name, version)
    except AccessDeniedError as exc:
        raise AccessDeniedError(
            f"preflight: the identity may not write secret {secret_name}, needed to {needed_for} ({exc})"
        ) from None
