"""checkov over infra/: 0 failed checks, 0 parsing errors, every skip justified inside its resource."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .conftest import INFRA, CheckovRun, run_checkov

# A check that raises is neither passed nor failed; it must at least have been reviewed and skipped.
_CRASHED = re.compile(r"Failed to run check (CKV2?_[A-Z]+_\d+) on ")


def test_checkov_finds_no_failed_check(checkov_infra: CheckovRun) -> None:
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in checkov_infra.report["results"]["failed_checks"]]
    assert failed == []
    assert checkov_infra.summary["failed"] == 0


def test_checkov_parses_every_bicep_file(checkov_infra: CheckovRun) -> None:
    # checkov exits 0 on a file it cannot parse: count the errors instead of trusting the exit code.
    assert checkov_infra.summary["parsing_errors"] == 0
    assert checkov_infra.report["results"]["parsing_errors"] == []
    assert checkov_infra.summary["passed"] > 0


def test_checkov_checks_crashed_only_where_skipped(checkov_infra: CheckovRun) -> None:
    crashed = set(_CRASHED.findall(checkov_infra.stderr))
    assert crashed <= set(checkov_infra.ids("skipped_checks"))


def test_every_skip_is_justified_inside_its_resource(checkov_infra: CheckovRun) -> None:
    skipped = checkov_infra.report["results"]["skipped_checks"]
    assert skipped, "expected the documented skips"
    for check in skipped:
        # A justification is a sentence, not a bare ID.
        assert len(check["check_result"].get("suppress_comment", "")) > 40, check["check_id"]
    for path in INFRA.rglob("*.bicep"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip=" in line:
                assert line.startswith("  // checkov:skip="), f"{path}: skip outside a resource body: {line}"


@pytest.fixture(scope="session")
def checkov_weakened(tmp_path_factory: pytest.TempPathFactory) -> CheckovRun:
    root = tmp_path_factory.mktemp("checkov-weakened") / "infra"
    shutil.copytree(INFRA, root)
    storage = root / "modules" / "storage.bicep"
    storage.write_text(storage.read_text().replace("supportsHttpsTrafficOnly: true", "supportsHttpsTrafficOnly: false"))
    vault = root / "modules" / "keyvault.bicep"
    vault.write_text(vault.read_text().replace("enablePurgeProtection: true", "enablePurgeProtection: false"))
    topic = root / "modules" / "outcome-topic.bicep"
    topic.write_text(
        topic.read_text()
        .replace("disableLocalAuth: true", "disableLocalAuth: false")
        .replace("publicNetworkAccess: 'Disabled'", "publicNetworkAccess: 'Enabled'")
    )
    (root / "broken.bicep").write_text("resource broken 'Microsoft.KeyVault/vaults@2023-07-01' = {{{\n")
    return run_checkov(root)


def test_checkov_assertions_bite_on_a_weakened_copy(checkov_weakened: CheckovRun) -> None:
    failed = set(checkov_weakened.ids("failed_checks"))
    # Storage HTTPS only, vault purge protection, outcome topic local auth and public network access.
    assert {"CKV_AZURE_3", "CKV_AZURE_110", "CKV_AZURE_192", "CKV_AZURE_193"} <= failed
    assert checkov_weakened.summary["parsing_errors"] == 1
    assert [Path(p).name for p in checkov_weakened.report["results"]["parsing_errors"]] == ["broken.bicep"]


def test_no_stale_skip_comments(checkov_infra: CheckovRun) -> None:
    # A skip for a check that no longer fires hides nothing today but would hide a regression tomorrow.
    in_files = set()
    for path in INFRA.rglob("*.bicep"):
        in_files |= set(re.findall(r"checkov:skip=(CKV2?_[A-Z]+_\d+)", path.read_text(encoding="utf-8")))
    assert in_files == set(checkov_infra.ids("skipped_checks"))
