"""The builder's edits of a step tree (nurturing.sequence_tree): pure, no database."""

from __future__ import annotations

import pytest

from nurturing import sequence_tree as tree

STEPS = [
    {"type": "email", "template": 1},
    {
        "type": "split",
        "variants": [
            {"weight": 50, "name": "A", "steps": [{"type": "email", "template": 2}]},
            {"weight": 50, "steps": [{"type": "wait", "days": 1}, {"type": "email", "template": 3}]},
        ],
    },
    {"type": "branch", "if": {}, "then": [{"type": "notify_owner"}], "else": []},
]


def test_paths_and_walk():
    assert tree.parse("1.variants.1.steps.0") == [1, "variants", 1, "steps", 0]
    assert tree.to_str([1, "variants", 1, "steps", 0]) == "1.variants.1.steps.0"
    assert tree.step_at(STEPS, [1, "variants", 1, "steps", 1]) == {"type": "email", "template": 3}
    assert tree.step_at(STEPS, "2.then.0") == {"type": "notify_owner"}
    assert tree.step_at(STEPS, "9") is None and tree.step_at(STEPS, "1.bogus") is None
    assert [p for p, _, _ in tree.walk(STEPS)] == [
        "0", "1", "1.variants.0.steps.0", "1.variants.1.steps.0", "1.variants.1.steps.1", "2", "2.then.0",
    ]  # fmt: skip
    assert tree.variant_key("1", 0) == "1:0"


def test_edits_answer_a_new_tree_and_leave_the_old_one():
    added = tree.insert(STEPS, "2.else", {"type": "wait", "days": 2})
    assert added[2]["else"] == [{"type": "wait", "days": 2}] and STEPS[2]["else"] == []
    moved = tree.move(STEPS, "1.variants.1.steps.1", -1)
    assert moved[1]["variants"][1]["steps"][0]["type"] == "email"
    assert tree.remove(STEPS, "0")[0]["type"] == "split"
    with pytest.raises(tree.PathError):
        tree.move(STEPS, "0", -1)
    with pytest.raises(tree.PathError):
        tree.remove(STEPS, "1.variants")


def test_editing_a_split_keeps_its_variants_steps_and_a_branch_its_arms():
    edited = tree.replace(STEPS, "1", {"type": "split", "variants": [{"weight": 70}, {"weight": 30, "name": "B"}]})
    assert edited[1]["variants"][0] == {"weight": 70, "steps": [{"type": "email", "template": 2}]}
    assert edited[1]["variants"][1]["steps"][0] == {"type": "wait", "days": 1}
    branch = tree.replace(STEPS, "2", {"type": "branch", "if": {"opened_last": True}})
    assert branch[2]["then"] == [{"type": "notify_owner"}] and branch[2]["if"] == {"opened_last": True}


def test_variants_added_and_removed():
    more = tree.variant_add(STEPS, "1")
    assert len(more[1]["variants"]) == 3 and more[1]["variants"][2] == {"weight": 50, "steps": []}
    assert len(tree.variant_remove(more, "1", 0)[1]["variants"]) == 2
    with pytest.raises(tree.PathError):
        tree.variant_add(STEPS, "0")


@pytest.mark.parametrize(
    "key, path",
    [
        ("steps[2].variants[0].steps[1].template", "2.variants.0.steps.1"),
        ("steps[1].variants[0].weight", "1"),
        ("steps[1].variants", "1"),
        ("steps[3].then[0].if", "3.then.0"),
        ("steps[0]", "0"),
        ("steps", ""),
        ("name", ""),
    ],
)
def test_error_keys_name_their_step(key, path):
    assert tree.error_path(key) == path
