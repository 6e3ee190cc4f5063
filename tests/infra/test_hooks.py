"""azd hooks: a POSIX and a Windows variant of the postdeploy hook, the same CLI call in both, and the
subscription named explicitly on every CLI call. The POSIX script is run for real with a recording `az`
on PATH; PowerShell is not installed here, so the Windows script is compared with it statically."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import INFRA, REPO, Tree

HOOKS = INFRA / "hooks"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
PUBLIC_ENV = {
    "EVENT_DELIVERY_MODE": "public",
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    "AZURE_RESOURCE_GROUP": "rg-test",
    "EVENTGRID_SYSTEM_TOPIC_NAME": "evgt-test",
    "FUNCTION_APP_NAME": "func-test",
    "HOST_STORAGE_ACCOUNT_ID": "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/st",
    "DEAD_LETTER_CONTAINER_NAME": "eventgrid-deadletter",
    "MAX_DELIVERY_ATTEMPTS": "10",
    "EVENT_TTL_MINUTES": "1440",
}


def _hooks() -> dict[str, Any]:
    project: dict[str, Any] = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    hooks: dict[str, Any] = project["hooks"]
    return hooks


def test_postdeploy_hook_has_a_posix_and_a_windows_variant() -> None:
    # azd's hook schema (schemas/v1.0/azure.yaml.json, definitions.hook): `posix` and `windows` each
    # override the hook on their platform; with both present, no top-level `run`/`shell` is allowed.
    hook = _hooks()["postdeploy"]
    assert set(hook) == {"posix", "windows"}
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"
    for variant in hook.values():
        script = REPO / variant["run"]
        assert script.is_file(), variant["run"]
        assert variant["continueOnError"] is False
    assert (REPO / hook["posix"]["run"]).suffix == ".sh"
    assert (REPO / hook["windows"]["run"]).suffix == ".ps1"


def _join_continuations(text: str, marker: str) -> list[str]:
    return text.replace(marker + "\n", " ").splitlines()


def _az_calls(path: Path) -> list[list[str]]:
    """Every `az` invocation in a hook script, tokenised (line continuations joined, comments dropped)."""
    marker = "\\" if path.suffix == ".sh" else "`"
    calls = []
    for line in _join_continuations(path.read_text(encoding="utf-8"), marker):
        stripped = line.strip()
        if stripped.startswith("az "):
            calls.append(shlex.split(stripped))
    return calls


def _flags_and_parameters(call: list[str]) -> tuple[set[str], set[str]]:
    flags = {token for token in call if token.startswith("--")}
    parameters = {token.split("=", 1)[0] for token in call if re.fullmatch(r"[A-Za-z]+=.*", token)}
    return flags, parameters


@pytest.mark.parametrize("script", ["postdeploy.sh", "postdeploy.ps1"])
def test_every_cli_call_names_the_subscription(script: str) -> None:
    calls = _az_calls(HOOKS / script)
    assert calls, f"{script}: no az call found"
    for call in calls:
        index = call.index("--subscription")
        assert "AZURE_SUBSCRIPTION_ID" in call[index + 1]


def test_both_variants_make_the_same_call() -> None:
    (posix,) = _az_calls(HOOKS / "postdeploy.sh")
    (windows,) = _az_calls(HOOKS / "postdeploy.ps1")
    assert posix[:4] == windows[:4] == ["az", "deployment", "group", "create"]
    assert _flags_and_parameters(posix) == _flags_and_parameters(windows)
    # Both check the same settings before calling (every one the call uses), and stop on a failed call.
    sh = (HOOKS / "postdeploy.sh").read_text(encoding="utf-8")
    ps1 = (HOOKS / "postdeploy.ps1").read_text(encoding="utf-8")
    sh_checked = set(_group(r"for name in (.*?); do", sh).replace("\\\n", " ").split())
    ps1_checked = set(re.findall(r"'([A-Z_]+)'", _group(r"foreach \(\$name in @\((.*?)\)\)", ps1)))
    assert sh_checked == ps1_checked == set(PUBLIC_ENV) - {"EVENT_DELIVERY_MODE"}
    assert "$LASTEXITCODE" in ps1


def _group(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.S)
    assert match, pattern
    return match.group(1)


def _run_posix_hook(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run postdeploy.sh with a fake `az` that records its arguments, one per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "az-args"
    fake = bin_dir / "az"
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done >> "{record}"\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    full_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env}
    proc = subprocess.run(
        ["sh", str(HOOKS / "postdeploy.sh")], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    args = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
    return proc, args


def test_posix_hook_passes_the_subscription_and_every_output(tmp_path: Path) -> None:
    proc, args = _run_posix_hook(tmp_path, PUBLIC_ENV)
    assert proc.returncode == 0, proc.stderr
    assert args[:3] == ["deployment", "group", "create"]
    assert args[args.index("--subscription") + 1] == SUBSCRIPTION
    assert args[args.index("--resource-group") + 1] == "rg-test"
    template = Path(args[args.index("--template-file") + 1])
    assert template.resolve() == (INFRA / "modules" / "event-subscription-function.bicep").resolve()
    assert "functionAppName=func-test" in args
    assert "eventTimeToLiveInMinutes=1440" in args


def test_posix_hook_does_nothing_in_private_mode(tmp_path: Path) -> None:
    proc, args = _run_posix_hook(tmp_path, {**PUBLIC_ENV, "EVENT_DELIVERY_MODE": "private"})
    assert proc.returncode == 0
    assert args == []


def test_posix_hook_refuses_without_a_subscription(tmp_path: Path) -> None:
    env = {k: v for k, v in PUBLIC_ENV.items() if k != "AZURE_SUBSCRIPTION_ID"}
    proc, args = _run_posix_hook(tmp_path, env)
    assert proc.returncode != 0
    assert "AZURE_SUBSCRIPTION_ID" in proc.stderr
    assert args == []


def test_subscription_is_an_output_the_hooks_receive(trees: dict[str, Tree]) -> None:
    outputs = trees["original"].parsed["main.bicep"]["ok"]["outputs"]
    assert "AZURE_SUBSCRIPTION_ID" in outputs
