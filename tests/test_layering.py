"""The package's layering holds: a layer imports only layers below it, and no import cycles.

The layers are the folders of ``lab/``, lowest first (``lab/__init__.py`` counts as core).
Every import counts, wherever it sits: inside functions and under ``if TYPE_CHECKING:``
too. A lazy import still ties the layers together, and a cycle that only shows up when a
function runs is still a cycle. Modules of one layer may import each other, if acyclic.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "lab"

# Lowest first; layers in one tuple share a rank and may not import each other.
# providers, conformance, report and training do not exist yet: they are placed here
# so that a new folder with one of those names is checked from its first commit.
ORDER: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("topology",),
    ("providers",),
    ("importers",),
    ("render",),
    ("runtime",),
    ("daemons",),
    ("session",),
    ("observe",),
    ("ops",),
    ("conformance",),
    ("report",),
    ("training",),
    ("cli", "testing"),
)
RANK: dict[str, int] = {layer: rank for rank, peers in enumerate(ORDER) for layer in peers}


@dataclass(frozen=True)
class Import:
    """One import of a lab module by another, with where it is written."""

    importer: str  # dotted module name, e.g. lab.observe.status
    imported: str
    where: str  # file:line, e.g. lab/observe/status.py:13


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name (its folder under lab/), None if it has none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return "core"  # lab/__init__.py
    return parts[1] if parts[1] in RANK else None


def layer_violations(imports: Iterable[Import]) -> list[str]:
    """Every import of a higher layer, or of a peer in the same rank (cli <-> testing)."""
    problems = []
    for imp in imports:
        low, high = layer_of(imp.importer), layer_of(imp.imported)
        if low is None or high is None or low == high:
            continue  # unknown folders are reported by test_every_module_has_a_layer
        if RANK[high] > RANK[low]:
            why = "upward"
        elif RANK[high] == RANK[low]:
            why = "sideways: peers of one rank"
        else:
            continue
        problems.append(f"{imp.where} imports {imp.imported}: {low} may not import {high} ({why})")
    return problems


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle (as a closed chain a -> ... -> a) per strongly connected component.

    Tarjan's algorithm, iterative so that a deep graph cannot hit the recursion limit;
    a module importing itself is ignored (it gets its own entry in sys.modules back).
    """
    succ = {n: sorted(set(graph.get(n, ())) - {n}) for n in graph}
    for targets in list(succ.values()):
        for t in targets:
            succ.setdefault(t, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in sorted(succ):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(succ[node]):
                work.append((node, i + 1))
                nxt = succ[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_chain(succ, set(c)) for c in sorted(components)]


def _chain(succ: Mapping[str, list[str]], component: set[str]) -> list[str]:
    """A shortest closed path through the component's first module (breadth first)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in succ[node]:
                if nxt not in component:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def module_name(path: Path, root: Path = ROOT) -> str:
    """lab/observe/status.py -> lab.observe.status; lab/ops/__init__.py -> lab.ops."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(p for p in (ROOT / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)


def collect_imports(files: Iterable[Path], root: Path = ROOT) -> list[Import]:
    """Every import of a lab module in ``files``, resolved to the module it loads.

    ``from lab.x import y`` loads lab.x.y when that is a module, else takes the name y
    from lab.x; relative imports are resolved against the importing module's package.
    """
    files = list(files)
    modules = {module_name(p, root): p for p in files}

    def resolve(name: str) -> str | None:
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    found = []
    for path in files:
        importer = module_name(path, root)
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join([*base_parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                targets = [
                    base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names
                ]
            for target in targets:
                if target.split(".")[0] != PACKAGE:
                    continue
                resolved = resolve(target)
                if resolved is not None and resolved != importer:
                    found.append(Import(importer, resolved, f"{rel}:{node.lineno}"))
    return found


def import_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.imported)
    return graph


# --- the package ---------------------------------------------------------------------


def test_every_module_has_a_layer():
    """A new folder (or a module loose in lab/) must be placed in ORDER deliberately."""
    loose = [
        p.relative_to(ROOT).as_posix() for p in source_files() if layer_of(module_name(p)) is None
    ]
    assert not loose, (
        "modules outside every known layer (add the folder to ORDER in "
        f"tests/test_layering.py, at its place): {loose}"
    )


def test_no_import_of_a_higher_layer():
    problems = layer_violations(collect_imports(source_files()))
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_no_import_cycles():
    cycles = find_cycles(import_graph(collect_imports(source_files())))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_scan_sees_the_package():
    """Guards the scanner itself: known edges of the real package are found, including a
    lazy import inside a function and one under TYPE_CHECKING."""
    edges = {(i.importer, i.imported) for i in collect_imports(source_files())}
    assert ("lab.testing.plugin", "lab.core.shipped") in edges  # top level
    assert ("lab.testing.plugin", "lab.ops.bringup") in edges  # from lab.ops import bringup
    assert ("lab.testing.plugin", "lab.session.handle") in edges  # under TYPE_CHECKING
    assert ("lab.cli", "lab.cli.faults") in edges  # from lab.cli import faults
    assert ("lab.cli.__main__", "lab.cli") in edges  # from lab.cli import main (a name)


# --- the checker, on synthetic input ---------------------------------------------------


def test_checker_reports_upward_and_peer_imports():
    imports = [
        Import("lab.observe.status", "lab.ops.faults", "lab/observe/status.py:3"),
        Import("lab.ops.faults", "lab.observe.status", "lab/ops/faults.py:4"),  # downward: ok
        Import("lab.testing.plugin", "lab.cli.common", "lab/testing/plugin.py:5"),
        Import("lab", "lab.topology", "lab/__init__.py:1"),
        Import("lab.providers.x", "lab.topology.model", "lab/providers/x.py:1"),  # ok
        Import("lab.providers.x", "lab.render", "lab/providers/x.py:2"),
        Import("lab.report.x", "lab.observe.status", "lab/report/x.py:1"),  # ok
        Import("lab.core.errors", "lab.core.paths", "lab/core/errors.py:9"),  # same layer: ok
        Import("lab.core.errors", "lab", "lab/core/errors.py:10"),  # core to core: ok
    ]
    assert layer_violations(imports) == [
        "lab/observe/status.py:3 imports lab.ops.faults: observe may not import ops (upward)",
        "lab/testing/plugin.py:5 imports lab.cli.common: "
        "testing may not import cli (sideways: peers of one rank)",
        "lab/__init__.py:1 imports lab.topology: core may not import topology (upward)",
        "lab/providers/x.py:2 imports lab.render: providers may not import render (upward)",
    ]


def test_checker_finds_cycles():
    graph = {
        "lab.a.x": {"lab.a.y", "lab.a.x"},  # the self-import alone is no cycle
        "lab.a.y": {"lab.a.z"},
        "lab.a.z": {"lab.a.x", "lab.b"},
        "lab.b": {"lab.c"},
        "lab.c": {"lab.b", "lab.d"},
        "lab.d": set(),
        "lab.e": {"lab.e"},
    }
    assert find_cycles(graph) == [
        ["lab.a.x", "lab.a.y", "lab.a.z", "lab.a.x"],
        ["lab.b", "lab.c", "lab.b"],
    ]
    assert find_cycles({"lab.a": {"lab.b"}, "lab.b": {"lab.c"}}) == []


def test_collect_imports_resolves_every_form(tmp_path: Path):
    """Absolute, ``from lab import x``, relative, lazy and TYPE_CHECKING imports all count."""
    root = tmp_path / "lab"
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/errors.py": "from . import paths\nfrom .paths import HOME\n",
        "core/paths.py": "HOME = 1\n",
        "observe/__init__.py": "from .status import collect\n",
        "observe/status.py": (
            "from typing import TYPE_CHECKING\n"
            "import lab.core.errors\n"
            "from lab import core\n"
            "from ..core import paths\n"
            "if TYPE_CHECKING:\n"
            "    from lab.ops.faults import Fault\n"
            "def collect():\n"
            "    import lab.ops\n"
            "    from lab.ops import faults, FAULTS\n"
        ),
        "ops/__init__.py": "FAULTS = {}\n",
        "ops/faults.py": "from lab.observe import collect\nimport os, pydantic\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    imports = collect_imports(sorted(root.rglob("*.py")), root=tmp_path)
    edges = sorted({(i.importer, i.imported) for i in imports})
    assert edges == [
        ("lab.core.errors", "lab.core.paths"),
        ("lab.observe", "lab.observe.status"),
        ("lab.observe.status", "lab.core"),
        ("lab.observe.status", "lab.core.errors"),
        ("lab.observe.status", "lab.core.paths"),
        ("lab.observe.status", "lab.ops"),
        ("lab.observe.status", "lab.ops.faults"),
        ("lab.ops.faults", "lab.observe"),
    ]
    assert sorted(layer_violations(imports)) == [
        "lab/observe/status.py:6 imports lab.ops.faults: observe may not import ops (upward)",
        "lab/observe/status.py:8 imports lab.ops: observe may not import ops (upward)",
        "lab/observe/status.py:9 imports lab.ops.faults: observe may not import ops (upward)",
        "lab/observe/status.py:9 imports lab.ops: observe may not import ops (upward)",
    ]
    assert find_cycles(import_graph(imports)) == [
        ["lab.observe", "lab.observe.status", "lab.ops.faults", "lab.observe"]
    ]
