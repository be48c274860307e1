"""Fixtures shared by the unit tests (plain helpers are in tests/factories.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A tiny random BERT saved as a base-model folder, once per module."""
    from tests.tiny import tiny_model_dir

    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny-base")))
