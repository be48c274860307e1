"""ReportLens: Streamlit entry point. ``make run`` starts it on 127.0.0.1:8501. The pages are listed once, in
``ui/navigation.py``. On loopback without sign-in configured it is single-user (``local:<os user>``, every role);
elsewhere it refuses to start without sign-in (``ui.auth.start_session``)."""

from __future__ import annotations

import logging

import streamlit as st

from ui.auth import start_session
from ui.navigation import navigation

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="ReportLens", page_icon="🩺", layout="wide")
start_session()
st.navigation(navigation()).run()
