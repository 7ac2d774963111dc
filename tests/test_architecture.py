"""The package's shape: no import cycles, light workers, one registry line per kind."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from hpcseg.cluster import CLUSTER_KINDS, CONTAINER_KINDS
from hpcseg.config.schemas import SCHEMAS
from hpcseg.data.sources import KINDS as DATASET_KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "hpcseg"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, tuple[set[str], list[str]]]:
    """Per hpcseg module: the hpcseg modules it imports anywhere, and the ones imported inside
    a function."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        found, nested = set(), []
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import submodule` needs the submodule; `from m import name`, m
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                submodules = [m for m in submodules if m in modules]
                targets = submodules if len(submodules) == len(node.names) else [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            targets = [t for t in targets if t in modules and t != name]
            found.update(targets)
            if targets and node.col_offset > 0:
                nested.append(f"{name}: {ast.unparse(node)}")
        graph[name] = (found, nested)
    return graph


def test_no_import_cycles_and_no_hidden_imports():
    graph = _imports()
    nested = [line for _, (_, lines) in graph.items() for line in lines]
    assert nested == [], "hpcseg modules imported inside functions (they hide cycles)"
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in graph[module][0]:
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, module, dep]))
            if dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_pipeline_code_knows_nothing_of_dask_files_or_clusters():
    for path in (PACKAGE / "pipeline").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in getattr(node, "names", [])]
                for name in names:
                    assert not name.startswith(("dask", "distributed", "pyarrow", "hydra",
                                                "hpcseg.run", "hpcseg.cluster", "hpcseg.results",
                                                "hpcseg.data")), f"{path.name}: {name}"  # fmt: skip


def test_a_worker_imports_neither_hydra_nor_matplotlib():
    code = (
        "import sys, hpcseg.run.worker, hpcseg.run.batches; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'hydra', 'matplotlib'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("group", "registry"),
    [("dataset", DATASET_KINDS), ("cluster", CLUSTER_KINDS), ("container", CONTAINER_KINDS)],
)
def test_every_schema_kind_has_exactly_one_implementation(group, registry):
    assert set(SCHEMAS[group].values()) == set(registry)


def test_the_sweep_plugins_are_optional():
    """hpcseg imports neither submitit nor Optuna nor a Hydra plugin: `pip install hpcseg`
    without the [sweep] extra runs everything but the SLURM launcher and the Optuna sweeper."""
    optional = ("submitit", "optuna", "hydra_plugins")
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in optional]
    assert found == []
