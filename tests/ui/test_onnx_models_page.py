"""The Models page's ONNX export: the button writes the export, the card is shown, the zip is offered."""

from __future__ import annotations

import pytest

from db.engine import make_engine
from db.model_versions import list_model_versions
from tests.factories import seed_with_version

pytestmark = pytest.mark.ui


def test_export_button_writes_the_onnx_folder_and_offers_a_zip(db, tmp_path, open_page):
    from services.models import onnx_export_of

    seed_with_version(db, tmp_path)
    (version,) = list_model_versions(make_engine(db), 1)
    at = open_page("pages/models.py")
    assert not at.exception, at.exception
    assert onnx_export_of(version) is None
    next(b for b in at.button if b.label == "Export to ONNX").click().run(timeout=240)
    assert not at.exception, at.exception
    assert any("ONNX export written" in s.value and "100.00%" in s.value for s in at.success), \
        [e.value for e in at.error]
    folder = onnx_export_of(version)
    assert folder is not None and (folder / "model.onnx").is_file()
    assert any("Download the ONNX export" in str(getattr(b, "label", "")) for b in at.get("download_button"))
