"""The training library stays usable without Ray, Optuna or MLflow in the process, and each
package's modules import one another without a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_infogan_imports_no_sweep_stack() -> None:
    code = (
        "import sys, infogan, infogan.train, infogan.loop, infogan.cli, infogan.metrics.suite, infogan.data.dsprites, "
        "infogan.data.mnist, infogan.data.digits, infogan.figures\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'optuna', 'mlflow'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_metric_names_load_nothing_but_the_standard_library() -> None:
    # sweeps.record (read by the analysis without torch) takes train/ metric names from it.
    code = ("import sys, infogan.metric_names\n"
            "print(','.join(m for m in ('torch', 'numpy', 'pydantic', 'infogan.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def module_imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (dotted name) -> the package's modules it imports anywhere in its
    file: at the top, inside functions and under ``if TYPE_CHECKING`` (a circle through a lazy
    import is still a circle a reader has to follow)."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / package).rglob("*.py")}
    files = {name.removesuffix(".__init__"): path for name, path in files.items()}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package upwards
                    parts = here.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, or a name in base
                targets.add(base)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (each holds a circle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_circle_finder_finds_circles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


@pytest.mark.parametrize("package", ["infogan", "sweeps", "analysis"])
def test_each_packages_modules_import_without_a_circle(package: str) -> None:
    graph = module_imports(package)
    assert len(graph) > 5 and any(graph.values())  # the scan sees the modules and their imports
    assert cycles(graph) == []
