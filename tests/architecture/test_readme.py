"""README.md's architecture section cannot drift from the code: every `file::name` of the
data path and every file and name of the "where is the rule for X?" table must exist (the
name defined in that very file, not merely re-exported), one file for each rule."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = "Architecture"
PATH_HEADING = "The data path"
RULES_HEADING = "Where is the rule for X?"
HOPS = ("Capture", "Score", "MQL", "Route", "Notify", "Nurture")
RULES = (
    "allowed stage moves",
    "who may see a lead",
    "who may own a lead",
    "how a lead is routed",
    "how a score is computed",
    "which reactions follow an event",
    "who may get a marketing e-mail now",
    "what a sequence does next",
)

_REF = re.compile(r"`([\w./-]+\.py)::([\w.]+)`")
_CODE = re.compile(r"`([^`]+)`")
_HOP = re.compile(r"^\d+\. \*\*([^*]+)\*\*")


@dataclass(frozen=True)
class Rule:
    rule: str
    files: tuple[str, ...]
    names: tuple[str, ...]


def section(text: str, title: str, level: int = 2) -> str:
    """The text under a heading, up to the next heading of the same level or higher."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{'#' * level} {title}"))
    heading = re.compile(rf"^#{{1,{level}}} ")
    end = next((i for i in range(start + 1, len(lines)) if heading.match(lines[i])), len(lines))
    return "\n".join(lines[start + 1 : end])


def hops(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The numbered hops of the data path: (label, the `file::name` references of the hop)."""
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        hop = _HOP.match(line)
        if hop:
            found.append((hop.group(1), []))
        if found:
            found[-1][1].extend(_REF.findall(line))
    return found


def rules(text: str) -> list[Rule]:
    """The rows of the rule table: rule, the files named in its file column, the names."""
    rows = [line for line in text.splitlines() if line.startswith("|")][2:]
    table = []
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        table.append(Rule(cells[0], tuple(_CODE.findall(cells[1])), tuple(_CODE.findall(cells[2]))))
    return table


def defines(tree: ast.Module, name: str) -> bool:
    """Whether the module defines `name` (a function, class or assigned name; `Class.attr`
    for a member), rather than importing it."""
    body: list[ast.stmt] = tree.body
    *outer, last = name.split(".")
    for part in outer:
        found = [n for n in body if isinstance(n, ast.ClassDef) and n.name == part]
        if not found:
            return False
        body = found[0].body
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == last:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == last for t in node.targets):
            return True
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == last:
            return True
    return False


def problems(readme: str, root: Path) -> list[str]:
    """Everything in the architecture section that does not match the code."""
    text = section(readme, SECTION)
    found: list[str] = []
    trees: dict[str, ast.Module | None] = {}

    def check(path: str, name: str | None) -> None:
        if path not in trees:
            file = root / path
            trees[path] = ast.parse(file.read_text(encoding="utf-8")) if file.is_file() else None
        if trees[path] is None:
            found.append(f"{path}: no such file")
        elif name is not None and not defines(trees[path], name):
            found.append(f"{path}::{name}: not defined there")

    steps = hops(section(text, PATH_HEADING, 3))
    if [label for label, _ in steps] != list(HOPS):
        found.append(f"the data path's hops are {[label for label, _ in steps]}, not {list(HOPS)}")
    for label, refs in steps:
        if not refs:
            found.append(f"hop {label} names no file::name")
        for path, name in refs:
            check(path, name)
    table = rules(section(text, RULES_HEADING, 3))
    if sorted(r.rule for r in table) != sorted(RULES):
        found.append(f"the rule table answers {[r.rule for r in table]}, not {list(RULES)}")
    for row in table:
        if len(row.files) != 1:
            found.append(f"{row.rule!r}: {len(row.files)} files, not one")
            continue
        if not row.names:
            found.append(f"{row.rule!r}: names nothing in {row.files[0]}")
        check(row.files[0], None)
        for name in row.names:
            check(row.files[0], name)
    return sorted(set(found), key=found.index)


def test_the_readme_architecture_section_matches_the_code():
    found = problems((ROOT / "README.md").read_text(encoding="utf-8"), ROOT)
    assert not found, "README.md's architecture section is out of date:\n" + "\n".join(found)


def test_the_readme_check_can_fail(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "rules.py").write_text(
        "from other import imported\nRULES = {}\ndef check(): ...\nclass Box:\n    def open(self): ...\n"
    )
    rows = "\n".join(f"| {rule} | `app/rules.py` | `RULES` |" for rule in RULES[:-1])
    readme = f"""# X
## Architecture
### The data path
1. **Capture**: `app/rules.py::check`, `app/rules.py::Box.open`,
   `app/rules.py::imported` (imported, not defined), `app/gone.py::f`
2. **Score**: nothing named
3. **Route**: `app/rules.py::Box.shut`
### Where is the rule for X?
| the rule for | file | defined as |
|---|---|---|
{rows}
| {RULES[-1]} | `app/rules.py`, `app/more.py` | `check` |
## Production
| not | a | rule |
"""
    assert problems(readme, tmp_path) == [
        "the data path's hops are ['Capture', 'Score', 'Route'], not " + str(list(HOPS)),
        "app/rules.py::imported: not defined there",
        "app/gone.py: no such file",
        "hop Score names no file::name",
        "app/rules.py::Box.shut: not defined there",
        f"{RULES[-1]!r}: 2 files, not one",
    ]
    good = readme.replace(", `app/more.py`", "").replace("`app/rules.py::imported` (imported, not defined), ", "")
    good = good.replace("`app/gone.py::f`", "").replace("nothing named", "`app/rules.py::RULES`")
    good = good.replace("3. **Route**: `app/rules.py::Box.shut`", "3. **MQL**: `app/rules.py::check`\n4. **Route**: "
                        "`app/rules.py::Box`\n5. **Notify**: `app/rules.py::check`\n"
                        "6. **Nurture**: `app/rules.py::check`")  # fmt: skip
    assert problems(good, tmp_path) == []
