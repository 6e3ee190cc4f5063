"""The fault schedule of `tests.doubles.faults`: rules parsed from the control API, and the counters.

A request is offered to the rules in order. Every rule whose `match` fits counts the request; the first
rule that also *fires* takes it, and later rules never see it. A rule fires on each matching request,
only on every `every`-th one when `every` is set, and at most `times` times when `times` is set (then it
stays in the schedule, exhausted, so its counters remain visible). With `forward_first` a "status" or
"reset" rule lets the request reach the upstream first and only replaces the answer: the change is made
but the client never hears of it, as when a response is lost in transit.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

ACTIONS = ("status", "reset", "delay")
# Key Vault's codes for the faults tests inject most; other statuses fall back to the reason phrase.
ERROR_CODES = {409: "Conflict", 429: "Throttled", 503: "ServiceUnavailable"}
# Key Vault's own wording where it is known; a rule's "message" replaces it.
ERROR_MESSAGES = {
    # A recorded 429 (Azure Key Vault, VaultRequestTypeLimitReached), answered without Retry-After.
    429: "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
    # Microsoft Learn, "Common error codes for Azure Key Vault": ConflictError.
    409: (
        "You're requesting multiple operations on the same item. It's recommended to sequence operations or "
        "to implement retry logic."
    ),
}
MAX_DELAY_SECONDS = 300.0


class RuleError(ValueError):
    """A rule in a PUT /__faults body is malformed; the message says which and why."""


def _number(spec: dict[str, Any], key: str, where: str, *, integer: bool, minimum: float) -> Any:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise RuleError(f"{where}.{key} must be {'an integer' if integer else 'a number'}")
    if value < minimum:
        raise RuleError(f"{where}.{key} must be at least {minimum:g}")
    return value


@dataclass
class Rule:
    """One scheduled fault and how often it has matched and fired."""

    spec: dict[str, Any]
    action: str
    method: str | None = None
    path_regex: re.Pattern[str] | None = None
    status: int | None = None
    retry_after: float | None = None
    delay_seconds: float = 0.0
    times: int | None = None
    every: int | None = None
    code: str | None = None
    inner_code: str | None = None
    message: str | None = None
    forward_first: bool = False
    matched: int = 0
    applied: int = 0

    @classmethod
    def parse(cls, spec: Any, index: int) -> Rule:
        where = f"rules[{index}]"
        if not isinstance(spec, dict):
            raise RuleError(f"{where} must be an object")
        match = spec.get("match") or {}
        if not isinstance(match, dict):
            raise RuleError(f"{where}.match must be an object")
        action = spec.get("action")
        if action not in ACTIONS:
            raise RuleError(f"{where}.action must be one of {', '.join(ACTIONS)}")
        rule = cls(spec=spec, action=action)
        method = match.get("method")
        if method is not None and not isinstance(method, str):
            raise RuleError(f"{where}.match.method must be a string")
        rule.method = method.upper() if method else None
        pattern = match.get("path_regex")
        if pattern is not None:
            try:
                rule.path_regex = re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise RuleError(f"{where}.match.path_regex is not a regular expression: {exc}") from exc
        rule.times = _number(spec, "times", where, integer=True, minimum=0)
        rule.every = _number(spec, "every", where, integer=True, minimum=1)
        rule.retry_after = _number(spec, "retry_after", where, integer=False, minimum=0)
        if action == "status":
            rule._parse_answer(spec, where)
        forward_first = spec.get("forward_first", False)
        if not isinstance(forward_first, bool) or (forward_first and action == "delay"):
            raise RuleError(f"{where}.forward_first must be a boolean, and only for 'status' or 'reset'")
        rule.forward_first = forward_first
        if action == "delay":
            delay = _number(spec, "delay_seconds", where, integer=False, minimum=0)
            if delay is None or delay > MAX_DELAY_SECONDS:
                raise RuleError(f"{where}.delay_seconds must be a number of at most {MAX_DELAY_SECONDS:g}")
            rule.delay_seconds = float(delay)
        return rule

    def _parse_answer(self, spec: dict[str, Any], where: str) -> None:
        """The status and the error body of a "status" rule."""
        status = _number(spec, "status", where, integer=True, minimum=400)
        if status is None or status > 599:
            raise RuleError(f"{where}.status must be an HTTP error status (400-599) for action 'status'")
        self.status = status
        for key in ("code", "inner_code", "message"):
            text = spec.get(key)
            if text is not None and not isinstance(text, str):
                raise RuleError(f"{where}.{key} must be a string")
        self.code, self.inner_code, self.message = spec.get("code"), spec.get("inner_code"), spec.get("message")

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.path_regex is None or self.path_regex.search(path) is not None

    def offer(self, method: str, path: str) -> bool:
        """Count a matching request and say whether this rule takes it."""
        if not self.matches(method, path):
            return False
        self.matched += 1
        if self.times is not None and self.applied >= self.times:
            return False
        if self.every is not None and self.matched % self.every != 0:
            return False
        self.applied += 1
        return True

    def error_code(self) -> str:
        status = self.status or 500
        if self.code:
            return self.code
        return ERROR_CODES.get(status) or HTTPStatus(status).phrase.replace(" ", "")

    def error_message(self) -> str:
        return self.message or ERROR_MESSAGES.get(self.status or 500, "injected")

    def retry_after_header(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        seconds = self.retry_after
        return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}

    def report(self, index: int) -> dict[str, Any]:
        remaining = None if self.times is None else max(self.times - self.applied, 0)
        counters = {"matched": self.matched, "applied": self.applied, "remaining": remaining}
        return {"index": index, "rule": self.spec, **counters}


@dataclass
class Schedule:
    """The rules in force and the proxy's counters."""

    rules: list[Rule] = field(default_factory=list)
    forwarded: int = 0
    injected: Counter[str] = field(default_factory=Counter)

    def replace(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
            raise RuleError('the body must be {"rules": [...]}')
        self.rules = [Rule.parse(spec, i) for i, spec in enumerate(body["rules"])]

    def pick(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.offer(method, path):
                self.injected[str(rule.status) if rule.action == "status" else rule.action] += 1
                return rule
        return None

    def reset_stats(self) -> None:
        self.forwarded = 0
        self.injected.clear()

    def stats(self) -> dict[str, Any]:
        injected = {"409": 0, "429": 0, "503": 0, "reset": 0, "delay": 0}
        injected.update(self.injected)
        by_rule = [rule.report(i) for i, rule in enumerate(self.rules)]
        return {"forwarded": self.forwarded, "injected": injected, "by_rule": by_rule}
