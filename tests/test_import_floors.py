"""The import floors: each part of fastleaf imports only parts on floors below its own, and no
two parts (nor two modules) import each other, directly or round a longer circle.

Every import counts: top level or inside a function, relative or absolute, and those only
read under ``TYPE_CHECKING`` (a dependency of meaning, even where not one of running).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "fastleaf"

# a part is a subpackage or a top-level module of fastleaf; the floors go from the bottom up
FLOORS = (
    ("fastleaf", "errors", "vocab"),   # the version, error types and names: import no other part
    ("utils",),
    ("recipes", "sources"),            # the built-in recipe files; where a CSV data set is
    ("config",),                       # options: defaults, files, checks
    ("data",),                         # tables, images, augmentation descriptions
    ("models", "loaders"),
    ("train",),                        # one run: model, loaders, loop, records, checkpoints
    ("predict",),                      # a finished run read back and its predictions
    ("kfold", "audit", "export", "viz", "doctor"),   # train then predict, or use predictions
    ("explain", "serve", "bench"),
    ("report", "study"),
    ("commands",),
    ("cli",),
    ("__main__",),                     # python -m fastleaf
)
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}


@dataclass(frozen=True)
class Import:
    source: str       # importing module, dotted
    target: str       # imported module (the package's __init__ for a name it defines)
    line: int


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted module name: file}`` for every module under ``root`` (a package folder)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports(root: Path = ROOT) -> list[Import]:
    """Every import of one module of ``root`` by another, with where it is written."""
    names = module_names(root)
    top = root.name

    def known(name: str) -> str:
        while name not in names:         # a name a module defines: that module
            name = name.rpartition(".")[0]
        return name

    found = []
    for module, path in names.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == top]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                if origin.split(".")[0] != top:
                    continue
                targets = [f"{origin}.{a.name}" for a in node.names]
            else:
                continue
            found += [Import(module, known(t), node.lineno) for t in targets]
    return found


def part(module: str) -> str:
    """``fastleaf.train.loop`` -> ``train``; ``fastleaf.cli`` -> ``cli``; the package itself."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def upward(found: list[Import]) -> list[Import]:
    """Imports of a part on the importer's own floor or above (a part importing itself is fine)."""
    return [i for i in found if part(i.source) != part(i.target)
            and FLOOR[part(i.target)] >= FLOOR[part(i.source)]]


def cycles(edges) -> list[list[str]]:
    """The strongly connected sets of more than one node (Tarjan): each holds a circle."""
    graph = defaultdict(set)
    for a, b in edges:
        if a != b:
            graph[a].add(b)
    nodes = sorted(set(graph) | {b for targets in graph.values() for b in targets})
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                out.append(sorted(group))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(out)


def described(found: list[Import]) -> list[str]:
    return [f"{i.source} line {i.line} imports {i.target}" for i in found]


@pytest.fixture(scope="module")
def found() -> list[Import]:
    return imports()


def test_every_part_has_a_floor():
    parts = {part(name) for name in module_names()}
    assert sorted(parts - set(FLOOR)) == []
    assert sorted(set(FLOOR) - parts) == []          # no floor names a part that is gone


def test_the_walk_reads_every_kind_of_import(found):
    pairs = {(i.source, i.target) for i in found}
    # inside a function, relative, naming a module of a package
    assert ("fastleaf.commands.train", "fastleaf.kfold") in pairs
    # a name a module defines: that module; one a package's __init__ defines: that package
    assert ("fastleaf.commands.tta_predict", "fastleaf.vocab") in pairs
    assert ("fastleaf.export.model_info", "fastleaf.predict") in pairs
    # ``from . import module``
    assert ("fastleaf.predict.ensemble", "fastleaf.predict.tta") in pairs


def test_no_part_imports_one_on_its_floor_or_above(found):
    assert described(upward(found)) == []


def test_training_and_data_never_import_prediction(found):
    climbing = [i for i in found if part(i.source) in ("train", "data", "models", "loaders")
                and part(i.target) == "predict"]
    assert described(climbing) == []


def test_no_two_parts_import_each_other(found):
    assert cycles((part(i.source), part(i.target)) for i in found) == []


def test_no_two_modules_import_each_other(found):
    assert cycles((i.source, i.target) for i in found) == []


def test_a_circle_and_a_climb_are_found(tmp_path):
    pkg = tmp_path / "fastleaf"
    for folder, text in (("data", "from ..predict.run import x\n"),
                         ("predict", "def f():\n    from fastleaf.data import table\n")):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
        (pkg / folder / ("table.py" if folder == "data" else "run.py")).write_text(text)
    (pkg / "__init__.py").write_text("")
    found = imports(pkg)
    assert {(i.source, i.target) for i in found} == {
        ("fastleaf.data.table", "fastleaf.predict.run"),
        ("fastleaf.predict.run", "fastleaf.data.table")}
    assert described(upward(found)) == ["fastleaf.data.table line 1 imports "
                                        "fastleaf.predict.run"]
    assert cycles((part(i.source), part(i.target)) for i in found) == [["data", "predict"]]
    assert cycles((i.source, i.target) for i in found) == [["fastleaf.data.table",
                                                            "fastleaf.predict.run"]]
