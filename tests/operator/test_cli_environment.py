"""Where the CLI cannot run, it says why and exits 5 before touching anything (click's own runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secret_rotation.cli.app import EXIT_ENVIRONMENT, cli


@pytest.mark.parametrize("command", [["plan", "my-vault"], ["replay", "poison"]])
def test_without_the_apps_settings_it_names_the_missing_setting(command: list[str]) -> None:
    result = CliRunner().invoke(cli, command, env={"ROTATION_ALLOWED_VAULTS": "", "ROTATION_STACK_ENV": None})
    assert result.exit_code == EXIT_ENVIRONMENT
    assert "ROTATION_ALLOWED_VAULTS" in result.output and "docs/cli.md" in result.output


def test_without_the_stack_env_file_it_says_how_to_start_the_stack(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--stack", "status", "https://127.0.0.1:1", "db"], env={"ROTATION_STACK_ENV": f"{tmp_path}/absent.env"}
    )
    assert result.exit_code == EXIT_ENVIRONMENT
    assert "stack.py up" in result.output


def test_bad_vault_and_secret_arguments_are_usage_errors() -> None:
    result = CliRunner().invoke(cli, ["plan", "http://insecure.example"])
    assert result.exit_code == 2 and "https" in result.output
    result = CliRunner().invoke(cli, ["status", "my-vault", "db--rotation-pending"])
    assert result.exit_code == 2 and "pending record" in result.output
