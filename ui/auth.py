"""Who uses this app session (issue 14). Phase 1: the start-up rule and single-user mode; sign-in pages come next.

On loopback without sign-in configured the app is single-user: ``local:<os user>`` acts, with every role. On any
other address it refuses to start unless sign-in (an ``[auth]`` section) is configured.
"""

from __future__ import annotations

import streamlit as st

from core.types import ReportLensError
from services.auth import auth_configured, check_startup, local_actor, set_process_actor


def start_session() -> str:
    """Check the start-up rule for the address Streamlit listens on (refusing with the reason and the fix, then
    stopping the script) and set who acts; returns the mode, ``"single-user"`` or ``"shared"``."""
    try:
        mode = check_startup(st.get_option("server.address"), auth_configured())
    except ReportLensError as exc:
        st.error(str(exc))
        st.stop()
    if mode == "single-user":
        set_process_actor(local_actor())
    return mode
