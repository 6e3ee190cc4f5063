"""Suite-wide secret hygiene: every secret value the run handles, checked against everything it wrote.

Values are tracked from three places: every `SecretValue` constructed (what the service generates or
reads from Key Vault), every password the tests create, and every value a test reads through the SDK.
Texts are every log record of the whole run (all loggers, all levels), every test report (exception
text and captured output) and every outcome event the local topic received. At the end of the session
a single value found in any text fails the run; the count, never the value, is reported.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field

from secret_rotation.secret_value import SecretValue

# Shorter strings (test placeholders such as "v") would match by accident.
MIN_TRACKED_LENGTH = 8


@dataclass
class Hygiene:
    values: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)
    records: int = 0
    reports: int = 0
    events: int = 0

    def track(self, value: str | None) -> None:
        if value and len(value) >= MIN_TRACKED_LENGTH:
            self.values.add(value)

    def leaks(self) -> int:
        corpus = "\n".join(self.texts)
        return sum(1 for value in self.values if value in corpus)

    def leak_sites(self) -> list[str]:
        """Where values appear, each value masked: for a developer hunting a leak on their own machine."""
        sites = []
        for text in self.texts:
            for value in self.values:
                at = text.find(value)
                if at >= 0:
                    sites.append(text[max(0, at - 300) : at].replace("\n", " | ") + "<VALUE>")
        return sites


HYGIENE = Hygiene()


class _CaptureEverything(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        HYGIENE.records += 1
        parts = [record.getMessage()]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        outcome = getattr(record, "outcome", None)
        if outcome is not None:
            parts.append(str(outcome))
        HYGIENE.texts.append("\n".join(parts))


def install() -> None:
    root = logging.getLogger()
    root.addHandler(_CaptureEverything(level=logging.DEBUG))
    root.setLevel(logging.DEBUG)
    original_init = SecretValue.__init__

    def tracking_init(self: SecretValue, value: str) -> None:
        original_init(self, value)
        HYGIENE.track(value)

    SecretValue.__init__ = tracking_init  # type: ignore[method-assign]
