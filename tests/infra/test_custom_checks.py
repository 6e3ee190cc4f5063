"""Custom rules (infra/checks/rules.py): none fires on infra/, each fires on its weakened copy."""

from __future__ import annotations

import pytest

from infra.checks.rules import check_tree

from .conftest import Tree
from .mutations import MUTATIONS, Mutation


def test_every_bicep_file_parses(trees: dict[str, Tree]) -> None:
    original = trees["original"]
    assert len(original.parsed) >= 10
    assert {rel: e["error"] for rel, e in original.parsed.items() if "error" in e} == {}


def test_templates_pass_every_custom_rule(trees: dict[str, Tree]) -> None:
    original = trees["original"]
    assert check_tree(original.parsed, original.texts) == []


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_rule_fires_on_weakened_copy(trees: dict[str, Tree], mutation: Mutation) -> None:
    tree = trees[mutation.name]
    rules = {finding.rule for finding in check_tree(tree.parsed, tree.texts)}
    assert mutation.rule in rules, f"{mutation.name}: expected {mutation.rule}, got {sorted(rules)}"
