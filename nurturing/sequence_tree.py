"""The step tree of a sequence version, addressed by paths (pure: no database).

A path names a step in SPEC's nested lists: "2" (the third top-level step),
"2.variants.1.steps.0" (the first step of a split's second variant), "3.then.1",
"3.else.0"; an enrollment's cursor is the same path as a list ([2, "variants", 1, "steps",
0]). A container path names a list of steps: "" (the top level), "2.variants.1.steps",
"3.then". The builder's edits are functions here that answer a new tree and never change
the one they are given (the draft stays what it was when an edit is refused)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

NESTED = {"split": ("variants",), "branch": ("then", "else")}


class PathError(ValueError):
    """A path that names nothing in the tree (an out-of-date form)."""


def parse(path: str | list | tuple) -> list:
    """ "2.variants.1" or [2, "variants", 1] → [2, "variants", 1] (numbers as ints)."""
    if isinstance(path, list | tuple):
        parts = list(path)
    elif path in ("", None):
        return []
    elif isinstance(path, str):
        parts = path.split(".")
    else:
        raise PathError(path)
    out: list = []
    for part in parts:
        if isinstance(part, int) or (isinstance(part, str) and part.isascii() and part.isdigit()):
            out.append(int(part))
        elif part in ("variants", "steps", "then", "else"):
            out.append(part)
        else:
            raise PathError(path)
    return out


def to_str(path: str | list | tuple) -> str:
    return ".".join(str(p) for p in parse(path))


def _resolve(steps: list, parts: list):
    node: object = steps
    for part in parts:
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                raise PathError(parts)
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                raise PathError(parts)
            node = node[part]
    return node


def step_at(steps: list, path) -> dict | None:
    """The step a path (or a cursor) names, None when it names nothing."""
    try:
        parts = parse(path)
        node = _resolve(steps, parts) if parts else None
    except PathError:
        return None
    return node if isinstance(node, dict) else None


def walk(steps: list, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, dict, int]]:
    """(path, step, depth) of every step, in the order a reader reads them."""
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        path = f"{prefix}{index}"
        yield path, step, depth
        if step.get("type") == "split":
            for v, variant in enumerate(step.get("variants") or []):
                if isinstance(variant, dict):
                    yield from walk(variant.get("steps") or [], f"{path}.variants.{v}.steps.", depth + 1)
        elif step.get("type") == "branch":
            for arm in ("then", "else"):
                yield from walk(step.get(arm) or [], f"{path}.{arm}.", depth + 1)


def variant_key(split_path: str, index: int) -> str:
    """How a message and a split's step run name the variant taken: "3:1"."""
    return f"{split_path}:{index}"


def _container(steps: list, container_path) -> list:
    parts = parse(container_path)
    node = _resolve(steps, parts) if parts else steps
    if not isinstance(node, list):
        raise PathError(container_path)
    return node


def container(steps: list, container_path) -> list:
    """The list of steps a container path names (PathError when it names none)."""
    return _container(steps, container_path)


def _parent(steps: list, path) -> tuple[list, int]:
    parts = parse(path)
    if not parts or not isinstance(parts[-1], int):
        raise PathError(path)
    return _container(steps, parts[:-1]), parts[-1]


def insert(steps: list, container_path, step: dict, index: int | None = None) -> list:
    tree = copy.deepcopy(steps)
    target = _container(tree, container_path)
    target.insert(len(target) if index is None else max(0, min(index, len(target))), copy.deepcopy(step))
    return tree


def replace(steps: list, path, step: dict) -> list:
    """The step at `path` becomes `step`; the nested steps of a split or a branch are kept
    when `step` does not name them (editing a split's weights keeps its variants' steps)."""
    tree = copy.deepcopy(steps)
    parent, index = _parent(tree, path)
    if not 0 <= index < len(parent):
        raise PathError(path)
    old, new = parent[index], copy.deepcopy(step)
    same = isinstance(old, dict) and old.get("type") == new.get("type")
    for key in NESTED.get(new.get("type"), ()):
        if key not in new and same:
            new[key] = old.get(key, [])
    if new.get("type") == "split" and isinstance(new.get("variants"), list):
        before = old.get("variants") if same and isinstance(old.get("variants"), list) else []
        for n, variant in enumerate(new["variants"]):
            if isinstance(variant, dict) and "steps" not in variant:
                kept = before[n] if n < len(before) and isinstance(before[n], dict) else {}
                variant["steps"] = kept.get("steps", [])
    parent[index] = new
    return tree


def remove(steps: list, path) -> list:
    tree = copy.deepcopy(steps)
    parent, index = _parent(tree, path)
    if not 0 <= index < len(parent):
        raise PathError(path)
    del parent[index]
    return tree


def move(steps: list, path, delta: int) -> list:
    """The step one place up (delta -1) or down (+1) within its own list."""
    tree = copy.deepcopy(steps)
    parent, index = _parent(tree, path)
    to = index + delta
    if not 0 <= index < len(parent) or not 0 <= to < len(parent):
        raise PathError(path)
    parent[index], parent[to] = parent[to], parent[index]
    return tree


def variant_add(steps: list, split_path, weight: int = 50) -> list:
    tree = copy.deepcopy(steps)
    split = step_at(tree, split_path)
    if split is None or split.get("type") != "split":
        raise PathError(split_path)
    split.setdefault("variants", []).append({"weight": weight, "steps": []})
    return tree


def variant_remove(steps: list, split_path, index: int) -> list:
    tree = copy.deepcopy(steps)
    split = step_at(tree, split_path)
    variants = split.get("variants") if split is not None and split.get("type") == "split" else None
    if not isinstance(variants, list) or not 0 <= index < len(variants):
        raise PathError(split_path)
    del variants[index]
    return tree


def error_path(key: str) -> str:
    """A field error's key ("steps[2].variants[0].steps[1].template") as the dotted path of
    the step it is about ("2.variants.0.steps.1"); "" for the sequence as a whole."""
    parts: list[str] = []
    for token in key.replace("]", "").replace("[", ".").split("."):
        if token == "steps" and not parts:
            continue
        if token.isdigit() or token in ("variants", "steps", "then", "else"):
            parts.append(token)
        else:
            break
    while parts and not parts[-1].isdigit():
        parts.pop()
    if parts and parts[-2:-1] == ["variants"]:
        parts = parts[:-2]  # a variant's own field (its weight): the split's
    return ".".join(parts)
