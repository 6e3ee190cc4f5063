"""A wrapper for secret material, so that no repr, str, log line or exception can show it.

The value comes out only through `reveal()`, which the Key Vault adapter and rotators call at the
moment they hand it to an SDK. `Redactor` scrubs free text (provider error messages) of every value a
rotation has touched before that text becomes an outcome reason.
"""

from __future__ import annotations

from typing import Final

_MASK: Final = "***"


class SecretValue:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({_MASK})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("SecretValue cannot be pickled")


class Redactor:
    """Remembers the values in play and removes them from text bound for logs and events."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def remember(self, *values: SecretValue | None) -> None:
        for value in values:
            if value is not None and value.reveal():
                self._values.add(value.reveal())

    def scrub(self, text: str) -> str:
        # Longest first, so a value that contains another is masked whole.
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, _MASK)
        return text
