"""The layout rules of docs/ARCHITECTURE.md that import-linter does not check itself."""

from __future__ import annotations

from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
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
                    found.append(sorted(component))
    return found


def test_no_import_cycles_between_modules() -> None:
    # Imports under TYPE_CHECKING are annotations only and may point back.
    graph = grimp.build_graph("gateway", "protocol", exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if m.startswith(("gateway", "protocol"))}
    assert _cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    graph.add_import(importer="b", imported="c")
    assert _cycles(graph, {"a", "b", "c"}) == [["a", "b"]]


def test_few_loose_modules_at_the_top_of_gateway() -> None:
    # The tree shows the flow: everything but the composition root and a few shared
    # leaves lives in a folder named after its part of the flow.
    loose = sorted(p.name for p in (ROOT / "gateway").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "app.py", "errors.py", "numbers.py"]


def test_sql_lives_only_under_the_store() -> None:
    keywords = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "gateway").rglob("*.py")
        if "store" not in path.relative_to(ROOT / "gateway").parts
        and any(k in path.read_text(encoding="utf-8") for k in keywords)
    ]
    assert offenders == []


def test_only_the_install_module_of_each_flow_package_reads_the_config() -> None:
    # Components take settings dataclasses; each flow package's install.py translates
    # the config into them (docs/ARCHITECTURE.md section 6).
    graph = grimp.build_graph("gateway", "protocol", exclude_type_checking_imports=True)
    flows = ("api", "console", "inbound", "outbound", "webhooks", "sms")
    readers = {
        importer
        for module in graph.find_children("gateway.config") | {"gateway.config"}
        for importer in graph.find_modules_that_directly_import(module)
        if importer.split(".")[:2] in [["gateway", flow] for flow in flows]
    }
    assert readers == {f"gateway.{flow}.install" for flow in flows}
