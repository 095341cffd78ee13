"""The package's shape: no import cycle among mlpjax's modules, no module far past 500 lines, no machine path in experiments/."""

import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.join(REPO, "mlpjax")


def _modules() -> dict[str, str]:
    """mlpjax's module names → file paths (a package is its __init__)."""
    out = {}
    for here, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not os.path.islink(os.path.join(here, d))]
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(here, f), REPO)[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = os.path.join(here, f)
    return out


def _imports(path: str, name: str, modules: dict) -> set[str]:
    """The mlpjax modules `name` imports anywhere in its file (a function's own imports too)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod itself.
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return {m for m in found if m in modules and m != name}


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: _imports(path, name, modules) for name, path in modules.items()}
    # A package's __init__ re-exporting its own modules is how a package is read, not a cycle of concepts.
    graph = {n: {m for m in deps if not m.startswith(n + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(n, stack):
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                pytest.fail("import cycle: " + " → ".join(stack[stack.index(m) :] + [m]))
            if m not in state:
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert "mlpjax.landscape.commands" in graph and "mlpjax.report.table" in graph  # the walk saw the packages


def test_no_module_is_far_past_500_lines():
    long = {name: n for name, path in _modules().items() if (n := sum(1 for _ in open(path))) > 520}
    assert not long, long


def test_committed_experiments_hold_no_machine_path():
    """Results are redrawn on other machines: no absolute path of this one in experiments/ (issue 20)."""
    root = os.path.join(REPO, "experiments")
    pattern = re.compile(rb"/(tmp|home|root|work|Users)/")
    found = []
    for d, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                if pattern.search(f.read()):
                    found.append(os.path.relpath(os.path.join(d, name), REPO))
    assert not found, f"machine paths in {found[:5]} ({len(found)} files); experiments/*/collect.py writes them relative"
