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
