"""Layers point one way: the engine and the demo import neither PyTorch nor rtgan's model, export or
training code (the engine's `torch` backend module excepted); models import none of the layers above."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "rtgan"
ABOVE_THE_RUNTIME = ("torch", "rtgan.models", "rtgan.export", "rtgan.train", "rtgan.kernels")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return found


def _offending(folder: str, forbidden: tuple[str, ...], allowed_files=()) -> dict[str, list[str]]:
    bad = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        if path.name in allowed_files:
            continue
        hits = sorted(m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if hits:
            bad[str(path.relative_to(PACKAGE))] = hits
    return bad


@pytest.mark.parametrize("folder", ["engine", "demo"])
def test_runtime_imports_nothing_above_it(folder):
    assert _offending(folder, ABOVE_THE_RUNTIME, allowed_files=("torch_backend.py",)) == {}


def test_models_know_nothing_of_export_engines_or_training():
    assert _offending("models", ("rtgan.export", "rtgan.engine", "rtgan.demo", "rtgan.train", "rtgan.bench")) == {}


def test_the_checker_sees_relative_imports():
    # a guard on the test itself: the torch backend does import models, relatively
    assert "rtgan.models" in _imports(PACKAGE / "engine" / "torch_backend.py")
