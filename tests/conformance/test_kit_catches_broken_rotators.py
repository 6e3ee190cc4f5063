"""The conformance kit fails rotators that break the rules: one that applies in `generate`, one whose
`accepts` lies, one that logs its value. They run in a pytest process of their own
(tests/conformance/broken_rotators.py), so the leaking one's log line stays out of this session's
hygiene check; only its JUnit report (test ids and the kit's messages, never a value) is read back.
"""

from __future__ import annotations

import asyncio
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# (test class, test, a phrase the kit's failure message must contain)
EXPECTED_FAILURES = [
    ("TestAppliesInGenerate", "test_hooks_are_idempotent_and_accepts_is_a_real_login", "applied in generate"),
    (
        "TestAppliesInGenerate",
        "test_pending_record_first_and_verification_before_promotion",
        "before the pending record",
    ),
    ("TestLyingAccepts", "test_hooks_are_idempotent_and_accepts_is_a_real_login", "accepts lies"),
    # A first run applies without asking `accepts`; a resumed one trusts it and promotes an unapplied value.
    (
        "TestLyingAccepts",
        "test_resumes_after_a_failure_at_every_store_and_provider_call",
        "verification before promotion",
    ),
    (
        "TestLogsItsValue",
        "test_no_secret_value_in_logs_exceptions_or_outcome_events",
        "log record of logger 'broken_rotator'",
    ),
]


async def test_the_kit_fails_each_deliberately_broken_rotator(stack_environ: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "broken.xml"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "tests/conformance/broken_rotators.py",
        "--noconftest",  # no session hygiene or figures: this run is expected to fail
        "-p",
        "no:cacheprovider",
        "-p",
        "no:logging",  # the kit captures logs itself; pytest would print the leaked line
        "--show-capture=no",
        "-q",
        f"--junitxml={report}",
        "-k",
        "not resumes or TestLyingAccepts",  # crash-and-resume is the slow check; only a lying accepts breaks it
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=REPO,
    )
    assert await process.wait() == 1  # pytest's "tests failed"
    failures = {
        f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}": failure.get("message", "")
        for case in ET.parse(report).iter("testcase")  # noqa: S314 (our own subprocess's report)
        for failure in case.iter("failure")
    }
    for cls, test, phrase in EXPECTED_FAILURES:
        assert phrase in failures.get(f"{cls}::{test}", ""), (cls, test, sorted(failures))
