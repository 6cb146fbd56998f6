"""The import graph of ``fer_live``: no cycles, and no stage importing a later stage.

A lazy import inside a function hides a cycle from Python but not from the design: the two
modules still need each other. The graph is built from the source with ``ast``, so nothing is
imported here. An edge goes to the module named (``from pkg import mod`` names ``pkg.mod`` when
that is a module); a package's ``__init__`` counts as the module ``pkg``. Module names follow the
installed mapping (pyproject.toml): ``fer_live.X`` is ``realtime/X``, ``fer_live.trainer.X`` is
``trainer/X``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# import name -> folder, as in pyproject.toml's [tool.setuptools.package-dir]
SOURCES = {"fer_live": ROOT / "realtime", "fer_live.trainer": ROOT / "trainer"}
PRODUCT, TRAINER = "fer_live", "fer_live.trainer"
# The product's stages in pipeline order; a stage imports only earlier stages and SHARED. The face
# mesh ("mesh") reads the tracked boxes and opens the landmarker through detect; the record
# sinks (outputs) name its blendshapes. ``events`` reads the smoothed probabilities; the --events
# sink, the report and the API use it. ``jobs`` (batch jobs) runs the pipeline per input and is
# driven by ``commands``.
STAGES = (
    "capture", "detect", "track", "mesh", "infer", "smooth", "events", "outputs", "report", "api",
    "jobs", "commands",
)  # fmt: skip
# Modules at the top that every stage may import; they import no stage (the names in the stages'
# tables are checked where the flags enter, in ``commands``).
SHARED = {"fer_live", "fer_live.types", "fer_live.errors", "fer_live.numeric", "fer_live.config"}
# The run loop: it imports the stages, and only ``commands``, the Python API (``api``, which
# runs the CLI's stages) and batch jobs (``jobs``, which run it per input) import it.
PIPELINE = "fer_live.pipeline"
PIPELINE_USERS = ("api", "jobs", "commands")


def _module_name(path: Path) -> str:
    package, folder = max(
        ((name, folder) for name, folder in SOURCES.items() if folder in path.parents),
        key=lambda item: len(item[1].parts),
    )
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """Our modules that ``path`` imports anywhere in its body (TYPE_CHECKING blocks aside)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    # one tree: the ids of a tree parsed apart would match this one's nodes only by chance
    tree = ast.parse(path.read_text(), str(path))
    typing_only = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {target for target in found if target in modules and target != name}


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:`` (they never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and ast.unparse(test).endswith("TYPE_CHECKING"):
            for child in node.body:
                skipped.update(id(sub) for sub in ast.walk(child))
    return skipped


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for folder in SOURCES.values() for p in folder.rglob("*.py")}
    modules = set(files)
    return {name: _imports(path, name, modules) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def with_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Each import also runs the ``__init__`` of every package above the module imported."""
    out = {}
    for name, targets in graph.items():
        ran = set()
        for target in targets:
            parts = target.split(".")
            ran.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        out[name] = {t for t in ran if t in graph and t != name and not name.startswith(t + ".")}
    return out


def _in_trainer(name: str) -> bool:
    return name == TRAINER or name.startswith(TRAINER + ".")


def product_graph() -> dict[str, set[str]]:
    """The product's modules (the trainer aside) and their imports of each other."""
    graph = import_graph()
    return {
        name: {t for t in targets if not _in_trainer(t)}
        for name, targets in graph.items()
        if not _in_trainer(name)
    }


def stage_of(name: str) -> str | None:
    """The stage folder a product module lives in, or None for the modules at the top."""
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else None


def later_stage_edges(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks the layering, as ``"a -> b"``."""
    rank = {stage: i for i, stage in enumerate(STAGES)}
    bad = []
    for name, targets in graph.items():
        source = stage_of(name)
        for target in targets:
            if target in SHARED:
                continue
            if target == PIPELINE:
                ok = source in PIPELINE_USERS
            elif name == PIPELINE:
                ok = True
            elif source is None:  # a shared module at the top imports no stage
                ok = False
            else:
                ok = rank[stage_of(target) or source] <= rank[source]
            if not ok:
                bad.append(f"{name} -> {target}")
    return sorted(bad)


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # imported in a function
    assert "fer_live.infer.engine.compile" in graph["fer_live.commands.compile"]
    assert "fer_live.trainer.cli" in graph and "fer_live.trainer" not in product_graph()
    # imported only under TYPE_CHECKING (fer_live's __init__ loads the API on first use)
    assert "fer_live.api.analysis" not in graph["fer_live"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles_in_the_product() -> None:
    cycle = find_cycle(product_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycles_through_package_inits() -> None:
    """Importing ``a.b.c`` runs ``a/b/__init__`` first, so its imports count too."""
    assert find_cycle(with_packages({"p": set(), "p.m": {"q.n"}, "q": {"p.m"}, "q.n": set()}))
    cycle = find_cycle(with_packages(product_graph()))
    assert cycle is None, "import cycle through a package: " + " -> ".join(cycle or [])


def test_no_import_cycles_in_trainer() -> None:
    graph = import_graph()
    trainer = {
        name: {t for t in targets if _in_trainer(t)}
        for name, targets in graph.items()
        if _in_trainer(name)
    }
    cycle = find_cycle(trainer)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_stage_imports_a_later_stage() -> None:
    assert later_stage_edges(product_graph()) == []


def test_the_layering_check_catches_a_later_stage() -> None:
    graph = {
        "fer_live.detect.plan": {"fer_live.infer.card", "fer_live.config"},
        "fer_live.infer.card": {"fer_live.capture.base"},
        "fer_live.outputs.sinks": {PIPELINE},
        "fer_live.types": {"fer_live.track.iou"},
        "fer_live.config": {"fer_live.errors", "fer_live.smooth.table"},
        "fer_live.commands.run": {PIPELINE, "fer_live.report.read"},
        PIPELINE: {"fer_live.smooth.table"},
    }
    assert later_stage_edges(graph) == [
        "fer_live.config -> fer_live.smooth.table",
        "fer_live.detect.plan -> fer_live.infer.card",
        "fer_live.outputs.sinks -> fer_live.pipeline",
        "fer_live.types -> fer_live.track.iou",
    ]


def test_the_product_is_laid_out_by_stage() -> None:
    """A folder per stage, six modules at the top, no module named after its folder."""
    names = set(product_graph())
    top = {n.split(".")[1] for n in names if n.count(".") == 1}
    assert top - set(STAGES) <= {"types", "errors", "config", "pipeline", "numeric"}
    assert set(STAGES) <= top
    assert {n for n in names if n.count(".") >= 2 and stage_of(n) not in STAGES} == set()
    nested = [n.split(".") for n in names if n.count(".") >= 2]
    repeats = [".".join(p) for p in nested if p[-1].startswith(p[-2] + "_")]
    assert repeats == []
