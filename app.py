"""ReportLens: Streamlit entry point. ``make run`` starts it on 127.0.0.1:8501. The pages are listed once, in
``ui/navigation.py``, each with the permission it needs. On loopback without sign-in configured it is single-user
(``local:<os user>``, every role); with an ``[auth]`` section people sign in (OpenID Connect) and see the pages
their roles allow; elsewhere it refuses to start without sign-in (``ui.auth.start_session``)."""

from __future__ import annotations

import logging

import streamlit as st

from core.threads import ProcessKind, size_process_threads
from core.types import ReportLensError
from ui import navigation
from ui.auth import start_session
from ui.state import announce_app

# Before any page imports torch: the app takes 1 intra-op thread on a 2-core machine (REPORTLENS_APP_THREADS), the
# background worker the others (core.threads). Idempotent on reruns.
try:
    _threads = size_process_threads(ProcessKind.APP)
except ReportLensError as exc:  # a bad REPORTLENS_APP_THREADS / OMP_NUM_THREADS: say so instead of a traceback
    st.error(str(exc))
    st.stop()
announce_app(_threads.threads)  # workers on this host leave the app its threads while it is open (jobs.presence)

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="ReportLens", page_icon="🩺", layout="wide")
start_session()  # stops here with the sign-in page when nobody is signed in
navigation.run(st.navigation(navigation.navigation()))  # the pages of the roles of who acts now
