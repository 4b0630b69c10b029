"""The shape of the code, checked on its imports (read with `ast`, see importgraph.py).

- No import cycle between modules: a local import inside a function that closes a loop is a
  cycle too (it only hides it from import time). TYPE_CHECKING imports never run: they make
  no cycle, but the layer rules below apply to them.
- The kernel (`leadcrm/`) imports no app, except `accounts.models` (the user model every
  actor, audit entry and permission is about). The one place that names the apps' API views
  is the URL configuration, `leadcrm/api_urls.py`: it is where the project composes its apps
  (`INSTALLED_APPS` and `leadcrm/urls.py` do the same with dotted strings); it may import an
  app's `api` and nothing else of it. An app's own needs of the kernel go through a registry
  the app fills in its `AppConfig.ready()` (e.g. `leadcrm.audit.readable_targets`).
- An app imports another app only through its `services` (writes), `selectors` (reads) or
  `models`: models are the data contracts between apps (a routing rule points at a lead, a
  score belongs to one), so reading another app's model is allowed, writing it is not (that
  is its services' business). Never another app's api, views, admin, tasks, serializers,
  engine or other internals: reactions across apps go through `leadcrm.events`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.architecture import importgraph
from tests.architecture.importgraph import LOCAL, TOP, TYPING, Import, Layers

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "leadcrm"
APPS = frozenset(
    {"accounts", "leads", "scoring", "routing", "nurturing", "capture", "integrations", "compliance", "enrichment"}
)
LAYERS = Layers(
    kernel=KERNEL,
    apps=APPS,
    public=("services", "selectors", "models"),
    kernel_may_import=frozenset({"accounts.models"}),
    composition={"leadcrm.api_urls": ("api",)},
)

# Loops closed only by TYPE_CHECKING imports (annotations naming a type of a module that
# imports this one), as describe_cycle writes them.
TYPING_ONLY_LOOPS: list[str] = []


@pytest.fixture(scope="module")
def edges() -> list[Import]:
    return importgraph.build(ROOT, sorted({KERNEL, *APPS}))


def test_every_app_and_the_kernel_are_read(edges):
    """A checker that reads nothing passes everything: the graph holds every package."""
    sources = {edge.source.partition(".")[0] for edge in edges}
    assert {KERNEL, "accounts", "leads", "scoring", "routing"} <= sources
    assert any(edge.kind == LOCAL for edge in edges) and any(edge.kind == TYPING for edge in edges)


def test_no_import_cycle(edges):
    found = importgraph.cycles(edges)
    message = "\n".join(importgraph.describe_cycle(chain) for chain in found)
    assert not found, f"import cycles (each hop names the importing line):\n{message}"


def test_type_checking_imports_are_reported_apart(edges):
    """TYPE_CHECKING imports are in the graph (the layer rules apply to them) but close no
    cycle, since they never run. A loop that only they close is allowed but pinned here, so
    a new one is seen and judged (none today)."""
    typing = [edge for edge in edges if edge.kind == TYPING]
    as_if_run = [Import(e.source, e.target, TOP, e.path, e.line, e.implicit) if e.kind == TYPING else e for e in edges]
    runtime = importgraph.cycles(edges)
    only_typing = [importgraph.describe_cycle(c) for c in importgraph.cycles(as_if_run) if c not in runtime]
    assert typing
    assert only_typing == TYPING_ONLY_LOOPS, "loops closed by TYPE_CHECKING imports only:\n" + "\n".join(only_typing)


def test_the_kernel_and_the_apps_import_each_other_through_their_public_modules(edges):
    found = importgraph.violations(edges, LAYERS)
    assert not found, "imports across layers:\n" + "\n".join(found)


# --- the checker itself, on a tiny fake project ---------------------------------------------


def _project(tmp_path: Path, files: dict[str, str]) -> list[Import]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for directory in {p.parent for p in tmp_path.rglob("*.py")}:
        (directory / "__init__.py").touch()
    return importgraph.build(tmp_path, ["kern", "one", "two"])


FAKE = Layers(kernel="kern", apps=frozenset({"one", "two"}), public=("services", "selectors", "models"))


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
    edges = _project(
        tmp_path,
        {
            "one/services.py": "from two import services as two_services\n",
            "two/services.py": "def react():\n    from one.services import thing\n",
        },
    )
    (chain,) = importgraph.cycles(edges)
    assert importgraph.describe_cycle(chain) == (
        "one.services (one/services.py:1) -> two.services (two/services.py:2 local) -> one.services"
    )


def test_checker_names_every_loop_of_a_tangle(tmp_path):
    edges = _project(
        tmp_path,
        {
            "one/a.py": "from one import b\nfrom . import c\n",
            "one/b.py": "import one.a\n",
            "one/c.py": "from .a import x\n",
        },
    )
    chains = [importgraph.describe_cycle(c) for c in importgraph.cycles(edges)]
    assert chains == [
        "one.a (one/a.py:1) -> one.b (one/b.py:1) -> one.a",
        "one.a (one/a.py:2) -> one.c (one/c.py:1) -> one.a",
    ]


def test_checker_keeps_type_checking_imports_out_of_cycles(tmp_path):
    edges = _project(
        tmp_path,
        {
            "one/models.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from one.services import S\n",
            "one/services.py": "from one.models import M\n",
        },
    )
    assert importgraph.cycles(edges) == []
    assert [(e.source, e.target, e.kind) for e in edges if not e.implicit] == [
        ("one.models", "one.services", TYPING),
        ("one.services", "one.models", TOP),
    ]


def test_checker_counts_a_package_init_run_by_a_submodule_import(tmp_path):
    """`import kern.x` runs kern/__init__.py first: a loop through it is a loop."""
    edges = _project(
        tmp_path,
        {"kern/__init__.py": "from one.services import go\n", "kern/x.py": "", "one/services.py": "import kern.x\n"},
    )
    (chain,) = importgraph.cycles(edges)
    assert importgraph.describe_cycle(chain) == (
        "kern (kern/__init__.py:1) -> one.services (one/services.py:1, implicit) -> kern"
    )


def test_checker_refuses_imports_across_layers(tmp_path):
    edges = _project(
        tmp_path,
        {
            "kern/audit.py": "from one.selectors import visible\nfrom one.models import M\n",
            "kern/urls.py": "from one import api\n",
            "one/api.py": "from two.services import act\nfrom two.selectors import read\nfrom two.models import T\n",
            "one/views.py": "def page():\n    from two import engine\n",
            "one/tasks.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from two.api import View\n",
            "two/services/__init__.py": "from two.services.capture import act\n",
            "two/services/capture.py": "from kern.audit import record\nfrom one.services.sub import x\n",
            "one/services/sub.py": "",
            "two/engine.py": "",
            "two/selectors.py": "",
            "two/models.py": "",
            "two/api.py": "",
            "one/selectors.py": "",
            "one/models.py": "",
        },
    )
    layers = Layers(**{**FAKE.__dict__, "kernel_may_import": frozenset({"one.models"})})
    assert importgraph.violations(edges, layers) == [
        "kern/audit.py:1: the kernel imports the app module one.selectors",
        "kern/urls.py:1: the kernel imports the app module one.api",
        "one/tasks.py:3 typing: one imports two.api, not two's services / selectors / models",
        "one/views.py:2 local: one imports two.engine, not two's services / selectors / models",
    ]
    composed = Layers(**{**layers.__dict__, "composition": {"kern.urls": ("api",)}})
    assert importgraph.violations(edges, composed) == [
        "kern/audit.py:1: the kernel imports the app module one.selectors",
        "one/tasks.py:3 typing: one imports two.api, not two's services / selectors / models",
        "one/views.py:2 local: one imports two.engine, not two's services / selectors / models",
    ]


def test_every_dotted_path_the_kernel_names_resolves():
    """What apps do not import, the kernel names by path (reactions, job hooks, the job
    runner's task, settings): each path must still point at a function or task, whatever
    module moves or splits."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    from leadcrm import events, jobs

    reactions = {r if isinstance(r, str) else r.task for rs in events.REACTIONS.values() for r in rs}
    hooks = {path for kind in jobs.KINDS.values() for path in (kind.run, kind.done, kind.failed) if path}
    named = {getattr(settings, "LEADCRM_MQL_THRESHOLD_SELECTOR", "")} - {""}
    beat = {entry["task"] for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values()}
    for path in sorted(reactions | {jobs.RUN_TASK} | beat):
        assert hasattr(import_string(path), "apply_async"), f"{path} is not a Celery task"
    for path in sorted(hooks | named):
        assert callable(import_string(path)), path
