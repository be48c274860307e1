"""The one live job-progress panel (Train, Queue and Overview pages): a fragment that polls the project's active
jobs every 2 s, shows a bar with the step and ETA, optional loss / dev-F1 curves with the current values, and a
Cancel button per job; when a job it showed ends it says how ("v1 ready: test F1 0.84 -> Models") and can rerun the
page, so tables below it refresh."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.jobs import JobKind, JobStatus
from services import jobs as job_svc
from ui.navigation import page
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


def current_values(job: Any) -> str:
    """``"epoch 3.4 · loss 0.412 · dev F1 0.731 (best 0.750 at step 80)"``: the numbers behind the curves now."""
    p, parts = job.progress, []
    if p.epoch is not None:
        parts.append(f"epoch {p.epoch:.1f}")
    if p.loss is not None:
        parts.append(f"loss {p.loss:.3f}")
    dev = [h for h in job.history if isinstance(h.get("dev_f1"), int | float)]
    if dev:
        best = max(dev, key=lambda h: h["dev_f1"])
        parts.append(f"dev F1 {dev[-1]['dev_f1']:.3f} (best {best['dev_f1']:.3f} at step {int(best.get('step', 0))})")
        if note := dev_sample_note(job.history):
            parts.append(note)
    return " · ".join(parts)


def dev_sample_note(history: Sequence[dict[str, Any]]) -> str | None:
    """``"dev F1 on a sample: 106 of the 212 dev documents; the final score uses all"`` when a run's in-training
    dev scorings read a sample of a large dev split (``TrainConfig.dev_sample_windows``), else None."""
    for h in reversed(history):
        n, of = h.get("dev_documents"), h.get("dev_of_documents")
        if isinstance(n, int | float) and isinstance(of, int | float):
            return f"dev F1 on a sample: {int(n)} of the {int(of)} dev documents; the final score uses all"
    return None


def loss_curves(history: Sequence[dict[str, Any]], job_id: int | None = None) -> None:
    """Training loss and dev entity F1 against the step, from a job's history points (legend above the plot, so it
    hides no tick; dev F1 on a 0-1 axis with ticks every 0.2). With ``job_id`` the figure is built once per new
    history point and reused by the live panel's refreshes (building and validating a plotly figure was most of a
    refresh's cost: bench/README.md, "The live-progress panel's cost per refresh")."""
    if not history:
        return
    last = history[-1]
    fig = (_loss_figure_cached(job_id, len(history), str(last.get("step")), tuple(history)) if job_id is not None
           else loss_figure(history))
    if fig is not None:
        st.plotly_chart(fig, width="stretch")


@st.cache_resource(max_entries=16, show_spinner=False)
def _loss_figure_cached(job_id: int, n_points: int, last_step: str, _history: tuple) -> go.Figure | None:
    return loss_figure(_history)


def loss_figure(history: Sequence[dict[str, Any]]) -> go.Figure | None:
    df = pd.DataFrame(list(history))
    if "step" not in df:
        return None
    fig = go.Figure()
    if "loss" in df:
        d = df.dropna(subset=["loss"])
        fig.add_trace(go.Scatter(x=d["step"], y=d["loss"], name="training loss", mode="lines"))
    if "dev_f1" in df:
        d = df.dropna(subset=["dev_f1"])
        name = "dev entity F1 (sample)" if "dev_of_documents" in df else "dev entity F1"
        fig.add_trace(go.Scatter(x=d["step"], y=d["dev_f1"], name=name, mode="lines+markers", yaxis="y2"))
    fig.update_layout(height=300, xaxis_title="step", yaxis=dict(title="loss", rangemode="tozero"),
                      yaxis2=dict(title="dev F1", overlaying="y", side="right", range=[0, 1], dtick=0.2,
                                  tickformat=".1f", showgrid=False),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
                      margin=dict(t=30, b=40))
    return fig


def ended_text(job: Any) -> tuple[str, str, str | None]:
    """How a finished job ended, for the panel: (level, message, page to open next)."""
    result = job.result or {}
    if job.status == JobStatus.SUCCEEDED and job.kind == JobKind.TRAIN:
        test = ((result.get("scores") or {}).get("test") or {})
        f1 = test.get("f1", test.get("macro_f1"))
        score = f": test F1 {f1:.2f}" if isinstance(f1, int | float) else ""
        then = " A scoring run follows." if result.get("then_job_ids") else ""
        return "success", f"{result.get('model_version', 'The model')} ready{score} (job {job.id}).{then}", \
            "pages/models.py"
    if job.status == JobStatus.SUCCEEDED and job.kind == JobKind.SCORE:
        return "success", f"Scoring job {job.id} done: the unlabelled reports are ranked.", "pages/queue.py"
    if job.status == JobStatus.SUCCEEDED:
        return "success", f"Job {job.id} ({job.kind}) done.", None
    if job.status == JobStatus.CANCELLED:
        return "info", f"Job {job.id} ({job.kind}) was cancelled.", None
    return "error", f"Job {job.id} ({job.kind}) failed: {job.error or 'no message'}", None


def _show_ended(entries: list[tuple[str, str, str | None]]) -> None:
    for level, text, target in entries[-3:]:
        getattr(st, level)(text, icon={"success": "✅", "info": "ℹ️", "error": "🚫"}[level])
        if target:
            entry = page(target)
            st.page_link(entry.path, label=f"Open {entry.title}", icon=entry.icon)


def live_jobs(project_id: int, kind: JobKind | None = None, *, curves: bool = False, empty: str | None = None,
              rerun_when_done: bool = False) -> None:
    """The live panel for ``project_id``'s active jobs (of ``kind``, or all). A job that ends while shown leaves a
    line saying how (with a link to Models or Queue); ``rerun_when_done`` then reruns the whole page (the Queue page
    shows the new ranking, the Train page its job history)."""
    seen_key = f"_live_jobs_{project_id}_{kind or 'all'}"
    ended_key = f"{seen_key}_ended"

    @st.fragment(run_every=POLL_S)
    def panel() -> None:
        active = job_svc.active_jobs(engine(), project_id, kind)
        running = {j.id for j in active}
        ended = st.session_state.get(seen_key, set()) - running
        st.session_state[seen_key] = running
        if ended:
            done = st.session_state.setdefault(ended_key, [])
            for job_id in sorted(ended):
                if (info := job_svc.get_job(engine(), job_id)) is not None and info.is_finished:
                    done.append(ended_text(info))
            if rerun_when_done:
                st.rerun(scope="app")
        _show_ended(st.session_state.get(ended_key, []))
        if not active:
            if empty:
                st.caption(empty)
            return
        for job in active:
            st.progress(job.fraction or 0.0, text=progress_text(job))
            if curves and job.kind == JobKind.TRAIN:  # a scoring job has no loss to draw
                if values := current_values(job):
                    st.caption(values)
                loss_curves(job.history, job.id)
            if st.button("Cancel", key=f"cancel_{job.kind}_{job.id}", disabled=job.cancel_requested):
                job_svc.cancel_job(engine(), job.id)
                st.rerun()

    panel()
