"""The package's layering: no module imports one that imports it back (function-level imports
included), and the core works without the optional extras."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xlstm_data"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that `path` imports anywhere in its body (a `from a import b`
    counts as `a.b` when that is a module, else `a`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name in modules:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {name: internal_imports(path, modules) for name, path in files.items()}
    for name in modules:  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = name.split(".")
        for target in list(graph[name]):
            tparts = target.split(".")
            graph[name] |= {".".join(tparts[:i]) for i in range(1, len(tparts))} - {name}
        graph[name] -= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_a_module_that_imports_it_back():
    graph = import_graph()
    assert "xlstm_data.config.base" in graph["xlstm_data.config.sources"]
    assert cycles(graph) == []


def test_the_layers_point_one_way():
    graph = import_graph()
    lower = {  # a module of the first kind never imports one of the second
        "xlstm_data.config": (
            "xlstm_data.sources.registry",
            "xlstm_data.readers",
            "xlstm_data.api",
        ),
        "xlstm_data.stages": ("xlstm_data.config", "xlstm_data.readers", "xlstm_data.loader"),
        "xlstm_data.packing": ("xlstm_data.stages", "xlstm_data.readers"),
        "xlstm_data.loader": ("xlstm_data.readers", "xlstm_data.sources", "xlstm_data.config"),
        "xlstm_data.sources": ("xlstm_data.readers", "xlstm_data.tools", "xlstm_data.api"),
    }
    for module, imports in graph.items():
        for layer, forbidden in lower.items():
            if module.startswith(layer):
                bad = sorted(i for i in imports if i.startswith(forbidden))
                assert not bad, f"{module} imports {bad}"


def run_without(package: str, code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter in which `package` cannot be imported."""
    blocked = f"import sys; sys.modules[{package!r}] = None\n" + code
    return subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("package", ["requests", "urllib3"])
def test_the_core_runs_without_the_ipfs_extra(tmp_path, package):
    code = f"""
import numpy as np
from xlstm_data import IpfsDataConfig, MemmapDataConfig, open_source
np.arange(100, dtype=np.uint16).tofile({str(tmp_path / "t.bin")!r})
source = open_source(MemmapDataConfig(data_files={str(tmp_path / "t.bin")!r},
                                      global_batch_size=1, max_target_length=9))
assert len(source) == 10
config = IpfsDataConfig(data_dir={str(tmp_path)!r}, global_batch_size=1, max_target_length=8,
                        tokenize_data=False)
try:
    open_source(config)
except Exception as error:
    print(type(error).__name__, error)
"""
    result = run_without(package, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ConfigError"), result.stdout
    assert "pip install 'xlstm-data[ipfs]'" in result.stdout


def test_the_core_dependencies_leave_out_requests():
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    core = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "requests" not in core and "urllib3" not in core
    assert 'ipfs = ["requests' in pyproject
