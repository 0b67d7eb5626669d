"""Imports point one way: edge (HTTP, entry points, CLI) -> core -> adapters -> leaves.

Every import statement of ``shared/`` and ``functions/`` is read with ``ast`` (the ones
inside functions too, since most of ours are deferred for cold start); ``if TYPE_CHECKING:``
blocks are left out (they never run). The rules:

- R1 ``starlette`` and ``shared.http`` are imported only by the HTTP edge (``shared/http/``),
  the entry points (``shared/entrypoints.py``, ``functions/{gateway,team,mcp}``) and the
  CLI commands that serve or build the app (``shared/cli/serve.py``, ``shared/cli/invoke.py``);
- R2 nothing below the edge imports ``shared.http``, ``shared.cli``, ``shared.entrypoints``
  or an entry point;
- R3 no import cycle among the modules of ``shared/``;
- R4 building a function's app loads none of the heavy SDKs (a fresh interpreter, as a cold
  start; ``multiagent serve`` adds Prometheus on purpose).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGE = ("shared.http", "shared.entrypoints", "shared.cli.serve", "shared.cli.invoke",
        "functions.gateway", "functions.team", "functions.mcp", "functions.container")
UPPER = ("shared.http", "shared.cli", "shared.entrypoints", "functions.gateway", "functions.team",
         "functions.mcp", "functions.container")
HEAVY = ("pydantic", "anthropic", "boto3", "google.cloud", "opentelemetry", "prometheus_client")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every run-time import, resolving relative ones."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno  # resolved to the module below, if it is one
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, list[tuple[str, int]]]:
    files = [*ROOT.joinpath("shared").rglob("*.py"), *ROOT.joinpath("functions").rglob("*.py")]
    modules = {_module_name(f): f for f in files}
    graph: dict[str, list[tuple[str, int]]] = {}
    for name, path in modules.items():
        edges = []
        for target, line in _imports(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py"):
            # `from a.b import c`: the module a.b.c if it exists, else a.b
            resolved = target if target in modules else target.rsplit(".", 1)[0] if "." in target else target
            edges.append((resolved, line))
        graph[name] = edges
    return graph


def test_starlette_and_the_http_package_only_at_the_edge() -> None:
    bad = [f"{m}:{line} imports {t}" for m, edges in _graph().items() for t, line in edges
           if _under(t, ("starlette", "shared.http")) and not _under(m, EDGE)]
    assert bad == []


def test_nothing_below_the_edge_imports_upward() -> None:
    bad = [f"{m}:{line} imports {t}" for m, edges in _graph().items() for t, line in edges
           if _under(t, UPPER) and not _under(m, UPPER) and not _under(t, ("shared.cli.errors",))]
    assert bad == []


def test_no_import_cycle_in_shared() -> None:
    graph = {m: sorted({t for t, _ in edges if t.startswith("shared.") and t != m})
             for m, edges in _graph().items() if m.startswith("shared")}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, [])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
                continue
            if child not in graph:
                continue
            if child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    assert cycles == []


def test_building_the_app_loads_no_heavy_sdk() -> None:
    # what the interpreter loaded before (a namespace package from a .pth file) does not count
    code = ("import sys\nbefore = set(sys.modules)\nfrom shared.http.app import build_app\n"
            "from shared.runtime import Runtime\nfrom shared.config import Settings\n"
            "build_app(Runtime(Settings(store_url='sqlite:///:memory:')))\n"
            f"print(sorted(m for m in set(sys.modules) - before if m.startswith({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout
