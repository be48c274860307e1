"""Where ``../shared/data`` is, and a skip with a clear reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need the shared real data folder beside the project "
                    "(../shared/data, see the project README).")
    return path
