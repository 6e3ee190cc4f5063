"""The fault proxy's throttle window (tests/doubles/faults_throttle.py) against an explicit clock.

Key Vault's limits are "maximum transactions allowed in 10 seconds, per vault" (Microsoft Learn, Azure
Key Vault service limits) and a 429 "does not count towards the throttle limits" (throttling guidance):
a slot frees when an admitted request leaves the window, never because of a refused one.
"""

from __future__ import annotations

from tests.doubles.faults_throttle import Throttle, kind_of


def test_requests_are_classified_as_key_vault_counts_them():
    assert kind_of("PUT", "/secrets/a") == "create"
    assert kind_of("PATCH", "/secrets/a/v1") == kind_of("GET", "/secrets/a/versions") == "other"
    assert kind_of("DELETE", "/deletedsecrets/a") == kind_of("GET", "/secrets") == "other"
    assert kind_of("GET", "/management/requests") is kind_of("GET", "/ping") is None


def test_the_window_slides_and_refusals_take_no_slot():
    throttle = Throttle.parse({"scale": 0.01, "window_seconds": 10, "retry_after": "auto"})  # 3 CREATEs / 10 s
    admitted = [throttle.admit("v:443", "PUT", "/secrets/a", now) is None for now in (0.0, 1.0, 2.0, 3.0, 9.0)]
    assert admitted == [True, True, True, False, False]
    assert throttle.admit("v:443", "PUT", "/secrets/a", 9.5) == {"Retry-After": "1"}  # the first leaves at 10.0
    assert throttle.admit("v:443", "PUT", "/secrets/a", 10.0) is None
    assert throttle.admit("other:443", "PUT", "/secrets/a", 10.0) is None  # per vault
    create = throttle.report(10.0)["vaults"]["v:443"]["create"]
    assert create == {"limit": 3, "admitted": 4, "throttled": 3, "in_window": 3}
