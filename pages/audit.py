"""Audit (admin; researchers read it): who did what, when, on which project, and how it ended; filters and a CSV
download. The rows hold ids and counts, never report text."""

from datetime import UTC, datetime, timedelta

import streamlit as st

from services.people import audit_trail
from services.projects import list_projects
from ui import people as view
from ui.state import engine

st.title("Audit")
st.caption("Every write through ReportLens, every refusal, sign-in and sign-out, oldest last below; times in UTC. "
           "The trail is append-only. `cli.py audit` prints the same as JSON lines.")
names = {p.id: p.name for p in list_projects(engine())}
since = datetime.now(UTC) - timedelta(days=3 * view.DEFAULT_DAYS)
recent = audit_trail(engine(), since=since, limit=view.MAX_ROWS)  # the choices of the filters below
filters = view.audit_filters(sorted({r.actor for r in recent}), sorted({r.action for r in recent}),
                             sorted(names.values()))
rows = audit_trail(engine(), **filters)
if not rows:
    st.info("No audit rows match these filters.")
    st.stop()
more = " (the first ones only: narrow the dates)" if len(rows) >= view.MAX_ROWS else ""
st.caption(f"{len(rows)} rows{more}, newest first.")
view.audit_table(rows, names)
st.download_button("Download CSV", view.audit_csv(rows, names), file_name="reportlens-audit.csv", mime="text/csv")
