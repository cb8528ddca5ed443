"""House rules for the shape of ``soc/`` (issue #9): no import circles, and every package
says what it exports in ``__all__``.

**Import circles.** Every module under ``soc/`` is parsed with :mod:`ast`; every import
counts -- at module level and inside functions, methods and classes -- except the ones
under ``if TYPE_CHECKING:`` (they never run). Imports are resolved to modules of ``soc``:
relative imports against the importing package, and ``from pkg import name`` to the module
``pkg.name`` when that file exists (else to ``pkg`` itself, whose ``__init__`` defines
``name``). Imports by string (``importlib.import_module``) are not followed.

Package ``__init__`` edges: importing ``soc.a.b`` also runs ``soc/a/__init__.py``. That
implied edge to the package counts like any other -- except when the package is the
importing module itself or one of its own parent packages: those are already being imported
when the module runs, so ``soc.a.b`` importing ``soc.a.c`` is no edge to ``soc.a``. An
*explicit* dependency on a parent's ``__init__`` still counts: ``from soc.a import name`` in
``soc/a/b.py`` where ``name`` is defined in (or re-exported by) ``soc/a/__init__.py`` is an
edge ``soc.a.b -> soc.a``, and a circle when that ``__init__`` imports ``soc.a.b``.

Circles are the strongly connected components of that graph (Tarjan); the test lists each
one with the import lines that tie it together.

**__all__.** Each package ``__init__`` declares ``__all__``; every name in it exists, and
every public name the ``__init__`` binds -- by a definition, or by importing it from one of
the package's own modules (a re-export) -- is in it. Not exports: submodules (``from . import
sub``), and names the ``__init__`` imports from elsewhere to use them (``from typing import
Any``, ``from soc.model import Parsed`` in :mod:`soc.ingest.parsers`).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOC = Path(__file__).resolve().parent.parent / "soc"


def find_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root``
    (a package is named by its ``__init__.py``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = find_modules(SOC)
PACKAGES = sorted(name for name, path in MODULES.items() if path.name == "__init__.py")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` by the statement ``code`` at ``where`` (``file:line``)."""

    source: str
    target: str
    where: str
    code: str
    implied: bool = False  # only the package ``__init__`` run by importing a submodule

    @property
    def label(self) -> str:
        return f"{self.target} (its __init__, run to import a submodule)" if self.implied else self.target

    def __str__(self) -> str:
        return f"{self.where}: {self.code}  -> {self.label}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere, but not under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _absolute(modules: dict[str, Path], module: str, node: ast.ImportFrom) -> str:
    """The module a ``from X import ...`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module if modules[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _edges_of(modules: dict[str, Path], module: str) -> Iterator[Edge]:
    path = modules[module]
    source = path.read_text(encoding="utf-8")
    parts = module.split(".")
    # already being imported while this module runs: itself and the packages it lives in
    running = {module} | {".".join(parts[:i]) for i in range(1, len(parts))}
    for node in _imports(ast.parse(source)):
        code = ast.unparse(node)
        where = f"{module.replace('.', '/')}{'/__init__' if path.name == '__init__.py' else ''}.py:{node.lineno}"
        if isinstance(node, ast.Import):
            explicit = [alias.name for alias in node.names]
        else:
            base = _absolute(modules, module, node)
            explicit = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        implied: set[str] = set()
        for target in dict.fromkeys(t for t in explicit if t in modules and t != module):
            yield Edge(module, target, where, code)
            names = target.split(".")
            implied |= {".".join(names[:i]) for i in range(1, len(names))}
        for package in sorted(implied - running - set(explicit)):
            if package in modules:
                yield Edge(module, package, where, code, implied=True)


def import_graph(modules: dict[str, Path]) -> dict[str, list[Edge]]:
    """module -> its run-time imports of other modules of the tree."""
    return {module: list(_edges_of(modules, module)) for module in modules}


def strongly_connected(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components of more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[Edge]]] = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for edge in edges:
                if edge.target not in index:
                    index[edge.target] = low[edge.target] = len(index)
                    stack.append(edge.target)
                    on_stack.add(edge.target)
                    work.append((edge.target, iter(graph[edge.target])))
                    break
                if edge.target in on_stack:
                    low[node] = min(low[node], index[edge.target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def describe(graph: dict[str, list[Edge]], component: list[str]) -> str:
    """The modules of a circle and the import statements that tie them (with what each imports)."""
    members = set(component)
    ties: dict[tuple[str, str], list[str]] = {}
    for edge in (e for m in component for e in graph[m] if e.target in members):
        ties.setdefault((edge.where, edge.code), []).append(edge.label)
    lines = [f"circle of {len(component)} modules: {', '.join(component)}"]
    lines += [f"    {where}: {code}  -> {', '.join(labels)}" for (where, code), labels in ties.items()]
    return "\n".join(lines)


def test_no_import_circles() -> None:
    graph = import_graph(MODULES)
    circles = strongly_connected(graph)
    assert not circles, "import circles in soc/:\n" + "\n".join(describe(graph, c) for c in circles)


FINDER_TREE = {
    "top/__init__.py": "",
    # a module needing a name of its package's __init__, which imports it: a circle
    "top/pkg/__init__.py": "from . import a\nfrom .b import thing\n\ndef helper(): ...\n",
    "top/pkg/a.py": "from top.pkg import helper\n",
    # a module importing a sibling: the implied edge to its own package does not count
    "top/pkg/b.py": "from top.pkg.c import x\nfrom . import d\nthing = 1\n",
    "top/pkg/c.py": "x = 1\n",
    "top/pkg/d.py": "",
    # an import inside a function counts
    "top/pkg/e.py": "def f():\n    from top.pkg.g import y\n",
    "top/pkg/g.py": "from .e import f as y\n",
    # one under TYPE_CHECKING does not
    "top/pkg/h.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from top.pkg.i import T\n",
    "top/pkg/i.py": "from top.pkg.h import TYPE_CHECKING as T\n",
    # importing another package's submodule runs that package's __init__: counts
    "top/other/__init__.py": "from top.other.j import k\n",
    "top/other/j.py": "from top.pkg.l import m as k\n",
    "top/other/sub.py": "n = 1\n",
    "top/pkg/l.py": "from ..other.sub import n as m\n",
}


def test_circle_finder(tmp_path: Path) -> None:
    """The finder on a small tree with each kind of edge the module docstring describes."""
    for name, text in FINDER_TREE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    graph = import_graph(find_modules(tmp_path / "top"))
    assert strongly_connected(graph) == [
        ["top.other", "top.other.j", "top.pkg.l"],
        ["top.pkg", "top.pkg.a"],
        ["top.pkg.e", "top.pkg.g"],
    ]
    assert [str(e) for e in graph["top.pkg.l"]] == [
        "top/pkg/l.py:1: from ..other.sub import n as m  -> top.other.sub",
        "top/pkg/l.py:1: from ..other.sub import n as m  -> top.other (its __init__, run to import a submodule)",
    ]
    assert [e.target for e in graph["top.pkg.b"]] == ["top.pkg.c", "top.pkg.d"]
    assert graph["top.pkg.h"] == []


# ---------------------------------------------------------------------------------- __all__


def _assigned(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return node.targets
    return [node.target] if isinstance(node, ast.AnnAssign) else []


def _bound(target: ast.expr) -> set[str]:
    """Names an assignment target binds (``a``, ``a, b``; not ``a[k]`` or ``a.b``)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        return {name for element in target.elts for name in _bound(element)}
    return _bound(target.value) if isinstance(target, ast.Starred) else set()


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if "__all__" in {name for target in _assigned(node) for name in _bound(target)}:
            assert isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            return list(ast.literal_eval(node.value))
    return None


def _exports(package: str, tree: ast.Module) -> set[str]:
    """Public names the ``__init__`` defines or re-exports from the package's own modules."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(MODULES, package, node)
            if base != package and not base.startswith(package + "."):
                continue  # imported to be used, not to be exported
            for alias in node.names:
                if f"{base}.{alias.name}" not in MODULES:  # a submodule is no export
                    names.add(alias.asname or alias.name)
        else:
            names |= {name for target in _assigned(node) for name in _bound(target)}
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_all_matches_exports(package: str) -> None:
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    declared = _declared_all(tree)
    assert declared is not None, f"{package} declares no __all__"
    assert len(declared) == len(set(declared)), f"{package}.__all__ repeats a name"
    module = importlib.import_module(package)
    missing = [name for name in declared if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"
    unlisted = sorted(_exports(package, tree) - set(declared))
    assert not unlisted, f"{package} exports names missing from __all__: {unlisted}"


def test_exports_checker() -> None:
    """What counts as an export of a package ``__init__`` (the checker itself)."""
    tree = ast.parse(
        "from soc.model import Parsed\nfrom . import syslog\nfrom .json import iter_json_records\n"
        "from ._time import MONTHS as _MONTHS\nX, (Y, *Z) = 1, (2, 3)\n_hidden = 1\n"
        "TABLE: dict = {}\nTABLE['k'] = 1\ndef f(): ...\nclass C: ...\n__all__ = ['X']\n"
    )
    assert _exports("soc.ingest.parsers", tree) == {"iter_json_records", "X", "Y", "Z", "TABLE", "f", "C"}
    assert _declared_all(tree) == ["X"]
