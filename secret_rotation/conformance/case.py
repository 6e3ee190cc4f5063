"""What a rotator brings to the conformance kit: its class, a way to set up a fresh credential at the
provider, and the provider's own answer to "does this credential log in?" (independent of the rotator,
so a rotator whose `accepts` lies is caught)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from secret_rotation.rotator import Credential, ProviderContext, Rotator
from secret_rotation.secret_value import SecretValue


@dataclass(frozen=True)
class Seed:
    """A fresh credential set at the provider, as the secret's first version will hold it.

    `tags` are the secret's tags; the kit adds `RotatorType` (the rotator's name) and
    `ValidityPeriodDays` (60) when absent, and `AdminSecretName` when `admin` is given (it stores the
    admin credential as a secret of its own, tagged with its `CredentialId`).
    """

    tags: Mapping[str, str]
    value: SecretValue = field(repr=False)  # the rendered value of the current credential
    admin: Credential | None = None
    alternate: Credential | None = None  # dual: the inactive credential as the provider knows it now


@dataclass(frozen=True)
class ConformanceCase:
    rotator: type[Rotator]
    seed: Callable[[], Awaitable[Seed]]  # a new, independent credential (set) per call
    logs_in: Callable[[Credential], Awaitable[bool]]  # asks the provider directly, never the rotator
    # The rotator gets the `ProviderContext` the service would give it on the stack; this may change it,
    # e.g. `lambda c: dataclasses.replace(c, arm_endpoint=env["..."])`.
    context: Callable[[ProviderContext], ProviderContext] | None = None
    # More tag changes the rotator must refuse (None removes the tag), besides the kit's generic ones.
    bad_tags: Sequence[Mapping[str, str | None]] = ()
