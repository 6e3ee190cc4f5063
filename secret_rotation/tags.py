"""The tags a rotation reads and writes, and the `RotationConfig` they parse into.

Microsoft's rotation samples define `CredentialId`, `ProviderAddress` and `ValidityPeriodDays`; they keep
their meaning here. The others are this service's own; docs/tags.md is the reference for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .errors import ConfigurationError, UnknownRotatorError

# Key Vault raises SecretNearExpiry 30 days before expiry: a shorter validity would make every new
# version due the moment it is written.
NEAR_EXPIRY_DAYS = 30
MAX_VALIDITY_DAYS = 3650


class Tag(StrEnum):
    # Read from the secret (Microsoft's sample conventions first).
    CREDENTIAL_ID = "CredentialId"
    PROVIDER_ADDRESS = "ProviderAddress"
    VALIDITY_PERIOD_DAYS = "ValidityPeriodDays"
    ROTATOR_TYPE = "RotatorType"
    ALTERNATE_CREDENTIAL_ID = "AlternateCredentialId"
    ADMIN_SECRET_NAME = "AdminSecretName"  # noqa: S105 (a tag name, not a password)
    VALUE_FORMAT = "ValueFormat"  # for rotators that offer more than one secret value format
    # Written on every version the service creates.
    ROTATION_ID = "RotationId"
    ROTATED_FROM_VERSION = "RotatedFromVersion"
    # Written on the companion pending secret.
    PENDING_FOR = "RotationPendingFor"
    PENDING_BASE_VERSION = "RotationBaseVersion"
    PENDING_STEP = "RotationStep"


@dataclass(frozen=True)
class RotationConfig:
    rotator_type: str
    credential_id: str
    provider_address: str
    validity_days: int
    alternate_credential_id: str | None = None
    admin_secret_name: str | None = None
    value_format: str | None = None

    @classmethod
    def from_tags(cls, secret_name: str, tags: Mapping[str, str] | None) -> RotationConfig:
        tags = tags or {}
        rotator_type = rotator_for(tags)
        if not rotator_type:
            raise UnknownRotatorError(
                f"secret {secret_name} has no {Tag.ROTATOR_TYPE} tag and its {Tag.PROVIDER_ADDRESS} "
                "is not an ARM resource ID of a type with a built-in rotator"
            )
        return cls(
            rotator_type=rotator_type,
            credential_id=_required(secret_name, tags, Tag.CREDENTIAL_ID),
            provider_address=_required(secret_name, tags, Tag.PROVIDER_ADDRESS),
            validity_days=_validity_days(secret_name, tags),
            alternate_credential_id=tags.get(Tag.ALTERNATE_CREDENTIAL_ID, "").strip() or None,
            admin_secret_name=tags.get(Tag.ADMIN_SECRET_NAME, "").strip() or None,
            value_format=tags.get(Tag.VALUE_FORMAT, "").strip() or None,
        )


# Microsoft's tutorials tag a secret with a resource ID and no rotator name: the resource type implies it.
ROTATORS_BY_RESOURCE_TYPE: Mapping[str, str] = {
    "microsoft.storage/storageaccounts": "storage-account-key",
    "microsoft.dbforpostgresql/flexibleservers": "postgres-flexible-admin",
    "microsoft.sql/servers": "azure-sql-admin",
}


def rotator_for(tags: Mapping[str, str]) -> str | None:
    """The rotator a secret's tags name (`RotatorType`) or imply (`ProviderAddress`); None if neither."""
    return tags.get(Tag.ROTATOR_TYPE, "").strip() or infer_rotator(tags.get(Tag.PROVIDER_ADDRESS, ""))


def infer_rotator(provider_address: str) -> str | None:
    """The built-in rotator for the resource type of an ARM resource ID, or None."""
    address = provider_address.strip()
    if address.lower().startswith("/tenants/") and "/applications/" in address.lower():
        return "entra-app-secret"  # an application object in a tenant (Microsoft Graph, not ARM)
    if not address.lower().startswith("/subscriptions/"):
        return None
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id

    if not is_valid_resource_id(address):
        return None
    parts = parse_resource_id(address)
    if "child_type_1" in parts:
        return None  # a child resource is never what a rotator manages
    return ROTATORS_BY_RESOURCE_TYPE.get(f"{parts.get('namespace', '')}/{parts.get('type', '')}".lower())


def _required(secret_name: str, tags: Mapping[str, str], tag: Tag) -> str:
    value = tags.get(tag, "").strip()
    if not value:
        raise ConfigurationError(f"secret {secret_name} has no {tag} tag")
    return value


def _validity_days(secret_name: str, tags: Mapping[str, str]) -> int:
    raw = _required(secret_name, tags, Tag.VALIDITY_PERIOD_DAYS)
    try:
        days = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"secret {secret_name}: {Tag.VALIDITY_PERIOD_DAYS} must be a whole number of days, got {raw!r}"
        ) from None
    if days <= NEAR_EXPIRY_DAYS or days > MAX_VALIDITY_DAYS:
        raise ConfigurationError(
            f"secret {secret_name}: {Tag.VALIDITY_PERIOD_DAYS}={days} must be more than {NEAR_EXPIRY_DAYS} "
            f"(each new version would be born inside Key Vault's {NEAR_EXPIRY_DAYS}-day near-expiry window) "
            f"and at most {MAX_VALIDITY_DAYS}"
        )
    return days
