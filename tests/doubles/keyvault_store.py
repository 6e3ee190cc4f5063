"""In-memory storage of the Key Vault double: one independent vault per request authority.

The HTTP layer (`tests.doubles.keyvault_http`) resolves each request to a vault by the authority the
client sent (`host:port`), so `https://127.0.0.1:8443` and `https://localhost:8443` behave like two
vaults even though one process serves both. This module holds the data model (live and soft-deleted
secrets, request counters), each vault's settings (RBAC rules and policy from `keyvault_rules`, purge
protection), Key Vault's limits and the rules for applying set/update bodies; it knows nothing of
aiohttp routing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.doubles.keyvault_errors import bad
from tests.doubles.keyvault_rules import Policy, Rbac

OPERATIONS = (
    "set",
    "get",
    "update",
    "list",
    "list_versions",
    "delete",
    "get_deleted",
    "list_deleted",
    "recover",
    "purge",
)
DEFAULT_PORTS = {"http": 80, "https": 443}
API_VERSION_COUNT = "api-version:"  # counter key prefix: requests per accepted api-version


@dataclass
class Version:
    """One immutable value plus its mutable attributes, as Key Vault stores a secret version."""

    version: str
    value: str
    created: int
    updated: int
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    content_type: str | None = None
    tags: dict[str, str] | None = None

    def shift(self, seconds: int) -> None:
        """Move every timestamp `seconds` into the past."""
        self.created, self.updated = self.created - seconds, self.updated - seconds
        self.nbf = None if self.nbf is None else self.nbf - seconds
        self.exp = None if self.exp is None else self.exp - seconds


@dataclass
class Secret:
    name: str  # case as first created; lookups are case-insensitive like Key Vault's
    versions: list[Version] = field(default_factory=list)  # creation order, so [-1] is "latest"


@dataclass
class Deleted:
    """A soft-deleted secret with all its versions, recoverable until purged."""

    secret: Secret
    deleted_date: int


@dataclass
class VaultStore:
    """The secrets and request counters of one vault."""

    authority: str
    secrets: dict[str, Secret] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    rbac: Rbac = field(default_factory=Rbac)
    policy: Policy = field(default_factory=Policy)
    deleted: dict[str, Deleted] = field(default_factory=dict)
    purge_protection: bool = False

    @property
    def recovery_level(self) -> str:
        # Soft delete is always on; purge protection takes "Purgeable" away (REST spec DeletionRecoveryLevel).
        return "Recoverable" if self.purge_protection else "Recoverable+Purgeable"


def normalize_authority(raw: str, scheme: str = "https") -> str:
    """`host:port` in lower case; a vault URL is accepted too, and a missing port means the scheme's default."""
    text = raw.strip()
    if "://" in text:
        parts = urlsplit(text)
        scheme, text = parts.scheme or scheme, parts.netloc
    text = text.rstrip("/").lower()
    host, sep, port = text.rpartition(":")
    # "[::1]" has colons but no port; only a trailing ":digits" outside brackets is a port.
    if sep and port.isdigit() and not host.endswith(":"):
        return text
    return f"{text}:{DEFAULT_PORTS.get(scheme, 443)}"


@dataclass
class Vaults:
    """Every vault the double serves, created on first use of an authority."""

    key: bytes
    tenant_id: str
    stores: dict[str, VaultStore] = field(default_factory=dict)

    def for_authority(self, authority: str, scheme: str = "https") -> VaultStore:
        normalized = normalize_authority(authority, scheme)
        return self.stores.setdefault(normalized, VaultStore(normalized))

    def select(self, vault: str | None) -> list[VaultStore]:
        """One vault when `vault` names it (an unknown one is created empty), else all of them."""
        if vault is None:
            return list(self.stores.values())
        return [self.for_authority(vault)]


VAULTS = web.AppKey("vaults", Vaults)


def attributes(v: Version, recovery_level: str = "Recoverable+Purgeable") -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": v.enabled}
    if v.nbf is not None:
        attrs["nbf"] = v.nbf
    if v.exp is not None:
        attrs["exp"] = v.exp
    attrs.update(created=v.created, updated=v.updated)
    attrs.update(recoveryLevel=recovery_level, recoverableDays=90)
    return attrs


def item(
    ident: str, v: Version, value: str | None = None, recovery_level: str = "Recoverable+Purgeable"
) -> dict[str, Any]:
    """A SecretBundle (with value) or SecretItem (without) as Key Vault serializes it."""
    body: dict[str, Any] = {} if value is None else {"value": value}
    body["id"] = ident
    if v.content_type is not None:
        body["contentType"] = v.content_type
    if v.tags is not None:
        body["tags"] = v.tags
    body["attributes"] = attributes(v, recovery_level)
    return body


# Microsoft Learn, "About Azure Key Vault secrets": contentType at most 255 characters; "up to 15 tags,
# each of which can have a 512 character name and a 512 character value".
MAX_CONTENT_TYPE = 255
MAX_TAGS = 15
MAX_TAG_LENGTH = 512


def _tags(tags: Any) -> dict[str, str]:
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(t, str) for k, t in tags.items()):
        raise bad("tags must be an object of string values.")
    if len(tags) > MAX_TAGS:
        raise bad(f"tags must have at most {MAX_TAGS} entries; got {len(tags)}.")
    if any(len(k) > MAX_TAG_LENGTH or len(t) > MAX_TAG_LENGTH for k, t in tags.items()):
        raise bad(f"tag names and values must be at most {MAX_TAG_LENGTH} characters.")
    return dict(tags)


def apply_common(v: Version, body: dict[str, Any]) -> None:
    """Validate contentType/tags/attributes shared by set and update, then apply them (all or nothing)."""
    changes: dict[str, Any] = {}
    if "contentType" in body:
        content_type = body["contentType"]
        if content_type is not None and (not isinstance(content_type, str) or len(content_type) > MAX_CONTENT_TYPE):
            raise bad(f"contentType must be a string of at most {MAX_CONTENT_TYPE} characters.")
        changes["content_type"] = content_type
    if body.get("tags") is not None:
        changes["tags"] = _tags(body["tags"])
    attrs = body.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise bad("attributes must be an object.")
    if attrs.get("enabled") is not None:
        if not isinstance(attrs["enabled"], bool):
            raise bad("attributes.enabled must be a boolean.")
        changes["enabled"] = attrs["enabled"]
    for key in ("nbf", "exp"):
        if attrs.get(key) is not None:
            if not isinstance(attrs[key], int) or isinstance(attrs[key], bool):
                raise bad(f"attributes.{key} must be an integer (epoch seconds).")
            changes[key] = attrs[key]
    for key, value in changes.items():
        setattr(v, key, value)


def count_summary(stores: list[VaultStore]) -> dict[str, Any]:
    """Per-operation request counts summed over `stores`, plus unauthorized, forbidden, total and the
    authenticated requests per api-version."""
    total: Counter[str] = Counter()
    for store in stores:
        total.update(store.counts)
    body: dict[str, Any] = {op: total[op] for op in OPERATIONS}
    api_versions = {k.removeprefix(API_VERSION_COUNT): n for k, n in total.items() if k.startswith(API_VERSION_COUNT)}
    return dict(
        body,
        unauthorized=total["unauthorized"],
        forbidden=total["forbidden"],
        total=sum(body.values()),
        apiVersions=api_versions,
    )


def now() -> int:
    return int(time.time())
