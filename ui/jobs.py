"""The one live job-progress panel (Train and Queue pages): a fragment that polls the project's active jobs every
2 s, shows a bar with the step and ETA, optional loss / dev-F1 curves, and a Cancel button per job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.jobs import JobKind
from services import jobs as job_svc
from ui.state import engine

POLL_S = 2.0


def progress_text(job: Any, prefix: str = "") -> str:
    """``"Job 3 (running): step 40 / 120 · ETA 12 s · evaluating"``: what the bar says."""
    p, details = job.progress, []
    if p.step is not None and p.max_steps:
        details.append(f"step {int(p.step)} / {int(p.max_steps)}")
    if eta := p.eta_text():
        details.append(eta)
    if p.message:
        details.append(str(p.message))
    head = f"{prefix}Job {job.id} ({job.status})"
    return head + (": " + " · ".join(details) if details else "")


def loss_curves(history: Sequence[dict[str, Any]]) -> None:
    """Training loss and dev entity F1 against the step, from a job's history points."""
    if not history:
        return
    df = pd.DataFrame(list(history))
    if "step" not in df:
        return
    fig = go.Figure()
    if "loss" in df:
        d = df.dropna(subset=["loss"])
        fig.add_trace(go.Scatter(x=d["step"], y=d["loss"], name="training loss", mode="lines"))
    if "dev_f1" in df:
        d = df.dropna(subset=["dev_f1"])
        fig.add_trace(go.Scatter(x=d["step"], y=d["dev_f1"], name="dev entity F1", mode="lines+markers", yaxis="y2"))
    fig.update_layout(height=300, xaxis_title="step", yaxis=dict(title="loss"),
                      yaxis2=dict(title="dev F1", overlaying="y", side="right", range=[0, 1]),
                      margin=dict(t=20, b=40))
    st.plotly_chart(fig, width="stretch")


def live_jobs(project_id: int, kind: JobKind | None = None, *, curves: bool = False, empty: str | None = None,
              rerun_when_done: bool = False) -> None:
    """The live panel for ``project_id``'s active jobs (of ``kind``, or all). ``rerun_when_done`` reruns the whole
    page when a job it showed has ended (the Queue page then shows the new ranking)."""
    seen_key = f"_live_jobs_{project_id}_{kind or 'all'}"

    @st.fragment(run_every=POLL_S)
    def panel() -> None:
        active = job_svc.active_jobs(engine(), project_id, kind)
        running = {j.id for j in active}
        ended = st.session_state.get(seen_key, set()) - running
        st.session_state[seen_key] = running
        if rerun_when_done and ended:
            st.rerun(scope="app")
        if not active:
            if empty:
                st.caption(empty)
            return
        for job in active:
            st.progress(job.fraction or 0.0, text=progress_text(job))
            if curves:
                loss_curves(job.history)
            if st.button("Cancel", key=f"cancel_{job.kind}_{job.id}", disabled=job.cancel_requested):
                job_svc.cancel_job(engine(), job.id)
                st.rerun()

    panel()
