"""The layer table beyond what import-linter sees: ``cli.py`` and ``app.py`` are top-level modules, not packages, so
their imports are checked here (the packages' contracts are in pyproject.toml and run by ``make test``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"cli.py": ("services", "core"), "app.py": ("ui", "core")}
FORBIDDEN_EXTERNAL = ("sqlalchemy", "torch", "transformers", "peft")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_entry_points_reach_the_project_only_through_their_layer(name: str) -> None:
    own = ("core", "db", "jobs", "training", "services", "ui", "pages")
    bad = [f"{name}:{line} imports {mod}" for line, mod in imported_modules(ROOT / name)
           if (mod.split(".")[0] in own and mod.split(".")[0] not in ALLOWED[name])
           or mod.split(".")[0] in FORBIDDEN_EXTERNAL]
    assert not bad, "\n".join(bad)


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from db.repository import get_project\n    import torch\n", encoding="utf-8")
    assert imported_modules(sample) == [(2, "db.repository"), (3, "torch")]


def test_module_imports_in(path: Path) -> list[tuple[int, str]]:
    """The imports in ``path`` of a test module (a dotted name with a ``test_*`` part), relative ones included."""

    def is_test_module(name: str) -> bool:
        return any(part.startswith("test_") for part in name.lstrip(".").split("."))

    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if is_test_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = [base] if is_test_module(base) else [f"{base}.{a.name}" for a in node.names]
            out += [(node.lineno, n) for n in names if is_test_module(n)]
    return out


test_module_imports_in.__test__ = False  # a helper whose name starts with test_, not a test


def test_no_test_module_imports_another(tmp_path: Path) -> None:
    """Shared test data lives in tests/factories.py and shared fixtures in a conftest.py: a test module imported by
    another hides what is shared (and, for a fixture, needs a noqa to survive the linter)."""
    sample = tmp_path / "x.py"
    sample.write_text("import tests.ui.test_pages\nfrom tests.unit.test_db import task\n"
                      "from tests.unit import test_db\ndef f():\n    from .test_training import cfg\n"
                      "    from tests.factories import cfg\n", encoding="utf-8")
    assert test_module_imports_in(sample) == [(1, "tests.ui.test_pages"), (2, "tests.unit.test_db"),
                                              (3, "tests.unit.test_db"), (5, ".test_training")]
    files = sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    bad = [f"{f.relative_to(ROOT)}:{line} imports {mod}" for f in files for line, mod in test_module_imports_in(f)]
    assert not bad, "move what they share to tests/factories.py or a conftest.py:\n" + "\n".join(bad)
