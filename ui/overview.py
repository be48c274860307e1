"""The Overview's guide to the loop: each step's state for the selected project, the next action, and the demo's
background jobs while they run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from core.demo import DEMO_PROJECT_NAME, DEMO_TRAIN_STEPS
from services.overview import LoopState
from ui.jobs import live_jobs
from ui.navigation import PAGES, PageEntry


def loop_guide(state: LoopState, pages: Sequence[PageEntry] = PAGES) -> None:
    """Every page of the navigation once (``pages``: those the person may use), in its order, with the state of the
    loop step it does for the selected project (done, next, not yet, and what it has), then the next action."""
    st.subheader(f"The loop for {state.project}")
    nxt = state.next_step
    by_page = {step.page: step for step in state.steps}
    for entry in pages:
        if entry.default:  # this page
            continue
        step = by_page.get(entry.path)
        c1, c2, c3 = st.columns([2, 1, 5])
        c1.page_link(entry.path, label=entry.title, icon=entry.icon)
        if step is not None:
            c2.markdown("✅ done" if step.done else ("👉 **next**" if step is nxt else "○ not yet"))
        elif entry.path == "pages/models.py" or entry.path == "pages/explain.py":
            c2.markdown("✅ ready" if state.model else "○ after Train")
        c3.caption(f"{step.detail} · {entry.description}" if step else f"{entry.section} · {entry.description}")
    st.info(f"**Next:** {state.next_action()}", icon="👉")


def jobs_and_demo_note(state: LoopState) -> None:
    """The project's background jobs, live (the page reruns when one ends, so the steps above refresh), and for
    the demo what its seed queued: a short first training run, then a scoring run."""
    demo = state.project == DEMO_PROJECT_NAME
    if demo and state.active_jobs:
        st.caption(f"The demo queued its first training job, a short run of {DEMO_TRAIN_STEPS} steps sized for a "
                   "laptop (a few minutes on 2 cores), and a scoring run after it; Models, Queue, Review and Explain "
                   "fill in as they finish. A full run is one click on **Train**.")
    elif demo and state.model:
        st.caption(f"The demo's first model came from a short run of {DEMO_TRAIN_STEPS} steps; train again on "
                   "**Train** with the defaults for a full one.")
    live_jobs(state.project_id, rerun_when_done=True)


def projects_table(projects: list[Any]) -> None:
    import pandas as pd

    st.dataframe(pd.DataFrame([{"project": p.name, "documents": p.n_documents, "labeled": p.n_labeled,
                                "labels": ", ".join(p.labels), "created": p.created_at} for p in projects]),
                 hide_index=True, width="stretch")


def delete_project_panel(project: Any) -> None:
    """Admins only (the caller checks): delete the selected project after typing its name; the service refuses while
    one of its jobs is queued or running, and records the deletion in the audit trail."""
    from core.types import ReportLensError
    from services.projects import delete_project
    from ui.state import engine

    with st.expander("Delete this project (admin)"):
        st.caption(f"Removes **{project.name}**: its documents, annotations, reviews, scores, jobs and models, for "
                   "good. The audit trail keeps its rows. Type the project's name to confirm.")
        typed = st.text_input("Project name", key="delete_project_name")
        if st.button("Delete project", type="primary", disabled=typed != project.name, key="delete_project"):
            try:
                out = delete_project(engine(), project.name, confirm=typed)
            except ReportLensError as exc:
                st.error(str(exc))
                return
            st.success(f"Deleted project {out['name']!r} ({out['documents']} documents, "
                       f"{out['model_versions']} model versions).")
