"""ReportLens: Streamlit entry point. ``make run`` starts it on 127.0.0.1:8501."""

from __future__ import annotations

import logging

import streamlit as st

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="ReportLens", page_icon="🩺", layout="wide")

PAGES = {
    "ReportLens": [st.Page("pages/home.py", title="Overview", icon="🏠", default=True)],
    "Data": [
        st.Page("pages/import_data.py", title="Import", icon="📥", url_path="import"),
        st.Page("pages/dataset.py", title="Dataset", icon="🗂️", url_path="dataset"),
    ],
    "Models": [
        st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
        st.Page("pages/models.py", title="Models", icon="📊", url_path="models"),
        st.Page("pages/explain.py", title="Explain", icon="🔍", url_path="explain"),
    ],
    "Annotate": [
        st.Page("pages/queue.py", title="Queue", icon="🎯", url_path="queue"),
        st.Page("pages/review.py", title="Review", icon="🩺", url_path="review"),
        st.Page("pages/labelstudio.py", title="Label Studio", icon="🔁", url_path="labelstudio"),
    ],
}

st.navigation(PAGES).run()
