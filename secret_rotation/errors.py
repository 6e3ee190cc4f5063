"""The one error root of the service.

Every error carries `retryable`: the queue adapter re-raises retryable errors (redelivery, then the
poison queue) and completes the message on permanent ones. Messages never contain secret values.
"""

from __future__ import annotations


class RotationError(Exception):
    """Base of every error the service raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigurationError(RotationError):
    """A setting or a secret's tags cannot work; retrying will not help."""


class InvalidEventError(RotationError):
    """The delivered event is malformed or not a Key Vault secret event we can use."""


class UnknownRotatorError(ConfigurationError):
    """No rotator is registered under the requested name."""


class ScopeError(ConfigurationError):
    """A vault or provider address lies outside what this deployment may touch."""


class SecretDisabledError(ConfigurationError):
    """Key Vault refused a get with 403 `SecretDisabled`: the secret's newest version is disabled."""


class AccessDeniedError(RotationError):
    """Key Vault or a provider refused our identity (403): permissions must change first."""


class ProviderRefusedError(RotationError):
    """The provider rejected a credential or a change, for a reason retrying will not fix."""


class ConflictError(RotationError):
    """The secret changed outside the rotation while one was pending; an operator must decide.

    (Key Vault's own 409 answers are not this: `keyvault_store.translate` classifies them by error code.)"""


class TransientError(RotationError):
    """A throttle, timeout or outage; the same message may succeed later."""

    retryable = True


class LockedError(RotationError):
    """Another worker holds the secret's lock; come back later."""

    retryable = True


class VerificationError(RotationError):
    """The new credential was stored and applied but did not log in yet (provider propagation)."""

    retryable = True
