"""Per-vault authorization rules of the Key Vault double: per-secret RBAC denials and Azure Policy "Deny".

Set through the management API (`tests.doubles.keyvault_management`) and checked by the data plane
(`tests.doubles.keyvault`) in Key Vault's order: authentication, then RBAC on the data action (before
the secret is even looked up, so a denied read of a missing secret is 403, not 404), then, for a new
version, Azure Policy on the version the write would create. Both answer 403 `Forbidden`, with the inner
codes `ForbiddenByRbac` and `ForbiddenByPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.doubles.keyvault_errors import KvError, bad

# Data-plane operation of the double -> the RBAC data action Key Vault checks for it (Microsoft Learn,
# "Azure role assignment condition format": Key Vault secret actions).
DATA_ACTIONS = {
    "set": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "update": "Microsoft.KeyVault/vaults/secrets/update/action",
    "get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "list_versions": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "delete": "Microsoft.KeyVault/vaults/secrets/delete",
    "recover": "Microsoft.KeyVault/vaults/secrets/recover/action",
    "purge": "Microsoft.KeyVault/vaults/secrets/purge/action",
    "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",  # GET /secrets, at the vault's scope
    "list_deleted": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
}
EVERY_SECRET = "*"  # a rule for "*" covers every secret and the vault-wide listings
# Shorthands accepted in a rule's "deny" list.
ALIASES = {"write": ("set", "update"), "read": ("get", "list_versions")}
# Built-in Azure Policy definitions for secrets whose "Deny" effect this double can enforce.
POLICY_CONTENT_TYPE = "Secrets should have content type set"
POLICY_EXPIRY = "Key Vault secrets should have an expiration date"


def _vault_name(authority: str) -> str:
    return authority.replace(".", "-").replace(":", "-").strip("[]")


@dataclass
class Rbac:
    """Which operations the identity may not perform on which secret names (case-insensitive)."""

    denied: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: Any) -> Rbac:
        """`{"rules": [{"secret": NAME or "*", "deny": [operation or alias, ...]}, ...]}`; rules add up."""
        if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
            raise bad('the body must be {"rules": [{"secret": NAME, "deny": [...]}, ...]}')
        denied: dict[str, set[str]] = {}
        for index, rule in enumerate(body["rules"]):
            where = f"rules[{index}]"
            if not isinstance(rule, dict) or not isinstance(rule.get("secret"), str) or not rule["secret"]:
                raise bad(f"{where}.secret must be a secret name")
            deny = rule.get("deny")
            if not isinstance(deny, list) or not deny:
                raise bad(f"{where}.deny must be a non-empty list of operations")
            operations: set[str] = set()
            for item in deny:
                if item in ALIASES:
                    operations.update(ALIASES[item])
                elif item in DATA_ACTIONS:
                    operations.add(item)
                else:
                    allowed = ", ".join([*DATA_ACTIONS, *ALIASES])
                    raise bad(f"{where}.deny: unknown operation {item!r} (one of {allowed})")
            denied.setdefault(rule["secret"].lower(), set()).update(operations)
        return cls({name: frozenset(ops) for name, ops in denied.items()})

    def report(self) -> dict[str, Any]:
        return {"rules": [{"secret": name, "deny": sorted(ops)} for name, ops in sorted(self.denied.items())]}

    def check(self, operation: str, name: str, authority: str, claims: dict[str, Any]) -> None:
        """Raise Key Vault's RBAC denial when `operation` on secret `name` (`*`: the vault) is denied."""
        denied = self.denied.get(name.lower(), frozenset()) | self.denied.get(EVERY_SECRET, frozenset())
        if operation not in denied:
            return
        vault = _vault_name(authority)
        caller = f"appid={claims.get('appid', '')};oid={claims.get('oid', '')};iss={claims.get('iss', '')}"
        resource = (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/local/providers/"
            f"microsoft.keyvault/vaults/{vault}" + ("" if name == EVERY_SECRET else f"/secrets/{name}")
        )
        # The shape of a real denial (DecisionReason, Assignment, Vault lines) as Key Vault words it.
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, please observe "
            "propagation time.\r\n"
            f"Caller: {caller}\r\n"
            f"Action: '{DATA_ACTIONS[operation]}'\r\n"
            f"Resource: '{resource}'\r\n"
            "Assignment: (not found)\r\n"
            "DenyAssignmentId: null\r\n"
            "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
            f"Vault: {vault};location=local\r\n"
        )
        raise KvError(403, "Forbidden", message, "ForbiddenByRbac")


@dataclass
class Policy:
    """Azure Policy assignments with the "Deny" effect on this vault's secrets (both off by default)."""

    require_content_type: bool = False
    require_expiry: bool = False

    @classmethod
    def parse(cls, body: Any) -> Policy:
        """`{"require_content_type": bool, "require_expiry": bool}`; a missing key means off."""
        keys = ("require_content_type", "require_expiry")
        if not isinstance(body, dict) or set(body) - set(keys):
            raise bad(f"the body must be an object with the keys {', '.join(keys)}")
        if not all(isinstance(body.get(k, False), bool) for k in keys):
            raise bad(f"{' and '.join(keys)} must be booleans")
        return cls(**{k: body.get(k, False) for k in keys})

    def report(self) -> dict[str, Any]:
        assigned = [POLICY_CONTENT_TYPE] * self.require_content_type + [POLICY_EXPIRY] * self.require_expiry
        return {
            "require_content_type": self.require_content_type,
            "require_expiry": self.require_expiry,
            "assignments": assigned,
        }

    def check_new_version(self, name: str, content_type: str | None, expires: int | None) -> None:
        """Raise the policy denial when a new version of `name` would not comply.

        "Deny" blocks the creation of new objects and new versions; existing versions, and updates of
        their attributes, are not affected (Microsoft Learn, Integrate Azure Key Vault with Azure Policy).
        """
        failed = [POLICY_CONTENT_TYPE] * (self.require_content_type and not content_type)
        failed += [POLICY_EXPIRY] * (self.require_expiry and expires is None)
        if failed:
            names = ", ".join(f"'{assignment}'" for assignment in failed)
            message = (
                f"Operation 'SetSecret' on secret '{name}' is not allowed by Azure Policy: the new version does "
                f"not comply with the policy assignment(s) {names} (effect: Deny)."
            )
            raise KvError(403, "Forbidden", message, "ForbiddenByPolicy")
