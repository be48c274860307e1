"""Models page sections: the ONNX export of a version (button, checks, zip download)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.types import ReportLensError
from services.models import export_version, onnx_export_of, zip_folder


def onnx_export_section(engine: Any, version: Any) -> None:
    """Export ``version`` to ONNX (optionally int8) and offer the folder as a zip download."""
    task = (version.config or {}).get("task", "ner")
    if task != "ner":
        st.caption("ONNX export covers NER models; this one classifies documents (use the merged export).")
        return
    c1, c2 = st.columns([1, 2])
    int8 = c2.checkbox("Also int8 (smaller, faster; its F1 change is measured on the test split)",
                       key=f"onnx_int8_{version.id}")
    if c1.button("Export to ONNX", key=f"onnx_export_{version.id}"):
        with st.spinner("Exporting (merging LoRA, tracing, checking against torch)..."):
            try:
                card = export_version(engine, version, "onnx", int8=int8)["card"]
            except ReportLensError as exc:
                st.error(str(exc))
                return
        check = card["checks"]["fp32_vs_torch"]
        st.success(f"ONNX export written: token argmax agreement with torch {check['token_argmax_agreement']:.2%}, "
                   f"identical entities in {check['identical_entity_documents']}/{check['documents']} reports.")
    folder = onnx_export_of(version)
    if folder is None:
        return
    card_md = (folder / "MODEL_CARD.md").read_text(encoding="utf-8") if (folder / "MODEL_CARD.md").is_file() else ""
    with st.expander(f"ONNX export of {version.name}: {folder}"):
        st.markdown(card_md)
    st.download_button("Download the ONNX export (.zip)", data=zip_folder(folder), file_name=f"{folder.name}.zip",
                       mime="application/zip", key=f"onnx_zip_{version.id}")
