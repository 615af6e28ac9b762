"""The codebase's shape, checked: small modules, imports that point down, no circle.

These are the renovation's invariants (issue 9). A change that breaks one has put code in the
wrong room: move it rather than loosen the test.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("roe_cli", "connectors", include_external_packages=True,
                              exclude_type_checking_imports=True)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    internal = {m for m in graph.modules if m.split(".")[0] in ("roe_cli", "connectors")}
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & internal) for m in internal}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(internal):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for folder in ("roe_cli", "connectors")
        for path in (ROOT / folder).rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_there_is_no_import_circle(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_connectors_import_nothing_of_the_core_but_the_shared_module(
    graph: grimp.ImportGraph,
) -> None:
    illegal = {
        (imp["importer"], imp["imported"])
        for imp in graph.find_matching_direct_imports(import_expression="connectors.** -> roe_cli.**")
        if not imp["imported"].startswith("roe_cli.shared")
    }
    assert illegal == set()


def test_the_shared_module_imports_neither_core_nor_connectors(graph: grimp.ImportGraph) -> None:
    illegal = {
        (imp["importer"], imp["imported"])
        for pattern in ("roe_cli.shared.** -> connectors.**", "roe_cli.shared.** -> roe_cli.**")
        for imp in graph.find_matching_direct_imports(import_expression=pattern)
        if not imp["imported"].startswith("roe_cli.shared")
    }
    assert illegal == set()


def test_test_modules_import_helpers_only_from_support_or_conftest() -> None:
    offenders = []
    for path in (ROOT / "tests").glob("test_*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("from tests.test_", "from .test_", "import tests.test_")):
                offenders.append(f"{path.name}: {stripped}")
    assert offenders == []
