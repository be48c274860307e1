"""The Users and Audit pages' pieces: the people table, the role editor, (de)activation, the audit filters, table
and CSV. Every change goes through :mod:`services.people` (checked and audited there); its refusals and errors
(the last admin keeping the role, say) are shown as they are."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import streamlit as st

from core.auth import Role
from core.types import ReportLensError
from services.files import csv_cell
from services.people import OUTCOMES, AuditRow, UserInfo, grant_role, revoke_role, set_active
from ui.state import engine

FLASH = "people_flash"
ANYONE = "(anyone)"
ANY = "(any)"
AUDIT_COLUMNS = ("at", "actor", "action", "outcome", "project", "document_id", "model_version_id", "entity",
                 "entity_id", "details")
DEFAULT_DAYS = 30
MAX_ROWS = 10_000


def flash() -> None:
    """The outcome of the last change (kept across the rerun that shows it)."""
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(message)


def _apply(changes: Sequence[Callable[[], Any]], done: str) -> None:
    """Run the service calls in order; stop at the first error and show it (the earlier ones stay done)."""
    try:
        for change in changes:
            change()
    except ReportLensError as exc:
        st.error(str(exc), icon="🚫")
        return
    st.session_state[FLASH] = done
    st.rerun()


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def _project_roles(person: UserInfo, names: dict[int, str]) -> str:
    return "; ".join(f"{names.get(pid, pid)}: {', '.join(sorted(roles))}"
                     for pid, roles in sorted(person.project_roles.items()))


def people_table(people: Sequence[UserInfo], names: dict[int, str]) -> None:
    import pandas as pd

    st.dataframe(pd.DataFrame([{
        "id": p.id, "name": p.display_name or "", "e-mail": p.email or "", "subject": p.subject,
        "roles": ", ".join(sorted(p.roles)), "project roles": _project_roles(p, names),
        "active": p.active, "last seen": _when(p.last_seen_at), "first seen": _when(p.created_at),
    } for p in people]), hide_index=True, width="stretch")


def pick_person(people: Sequence[UserInfo]) -> UserInfo:
    labels = [f"{p.label} ({p.subject})" + ("" if p.active else " — deactivated") for p in people]
    index = st.selectbox("Person", range(len(people)), format_func=lambda i: labels[i], key="people_pick")
    return people[index or 0]


def role_editor(person: UserInfo, projects: dict[str, int]) -> None:
    """The person's roles everywhere, or in one project: a multiselect and Save (one audited grant or revoke per
    role that changes)."""
    names = {pid: name for name, pid in projects.items()}
    scope = st.selectbox("Roles held", ["everywhere", *projects], key=f"people_scope_{person.id}",
                         help="A role in one project only applies to that project's data.")
    project = None if scope == "everywhere" else scope
    held = set(person.roles if project is None else person.project_roles.get(projects[scope], frozenset()))
    chosen = st.multiselect("Roles", [r.value for r in Role], default=sorted(held),
                            key=f"people_roles_{person.id}_{scope}")
    wanted = {Role(r) for r in chosen}
    give, take = sorted(wanted - held), sorted(held - wanted)
    where = "everywhere" if project is None else f"in {project}"
    if give or take:
        st.caption(" · ".join([*(f"grant {r.value}" for r in give), *(f"revoke {r.value}" for r in take)]))
    if st.button("Save roles", type="primary", disabled=not (give or take), key=f"people_save_{person.id}"):
        who = person.id
        changes = [*(lambda r=r: grant_role(engine(), who, r, project) for r in give),
                   *(lambda r=r: revoke_role(engine(), who, r, project) for r in take)]
        _apply(changes, f"Roles of {person.label} {where}: {', '.join(sorted(chosen)) or 'none'}.")
    if names and person.project_roles:
        st.caption(f"In projects: {_project_roles(person, names)}")


def activation(person: UserInfo) -> None:
    """Deactivate (they cannot sign in; their past decisions stay theirs) or reactivate."""
    if person.active:
        st.caption("A deactivated person cannot sign in, and an open session of theirs ends at its next click; "
                   "their decisions, imports and jobs stay attributed to them.")
        if st.button(f"Deactivate {person.label}", key=f"people_off_{person.id}"):
            _apply([lambda: set_active(engine(), person.id, False)], f"{person.label} is deactivated.")
    elif st.button(f"Reactivate {person.label}", key=f"people_on_{person.id}"):
        _apply([lambda: set_active(engine(), person.id, True)], f"{person.label} can sign in again.")


# ---------------------------------------------------------------- audit


def _day_bounds(picked: Any) -> tuple[datetime | None, datetime | None]:
    days = list(picked) if isinstance(picked, list | tuple) else [picked]
    days = [d for d in days if isinstance(d, date)]
    if not days:
        return None, None
    start, end = days[0], days[-1]
    return (datetime.combine(start, time.min, UTC), datetime.combine(end + timedelta(days=1), time.min, UTC))


def audit_filters(people: Sequence[str], actions: Sequence[str], projects: Sequence[str]) -> dict[str, Any]:
    """The filter widgets; returns the keyword arguments of :func:`services.people.audit_trail`."""
    c1, c2, c3 = st.columns(3)
    person = c1.selectbox("Person", [ANYONE, *people], key="audit_person",
                          help="An actor's subject (local:…, cli:… or a signed-in person), or a person's e-mail.")
    action = c2.selectbox("Action", [ANY, *actions], key="audit_action")
    project = c3.selectbox("Project", [ANY, *projects], key="audit_project")
    c4, c5 = st.columns([2, 1])
    today = datetime.now(UTC).date()
    picked = c4.date_input("Dates (UTC)", (today - timedelta(days=DEFAULT_DAYS), today), key="audit_dates")
    outcome = c5.selectbox("Outcome", [ANY, *OUTCOMES], key="audit_outcome")
    since, until = _day_bounds(picked)
    return {"person": None if person == ANYONE else person, "action": None if action == ANY else action,
            "project": None if project == ANY else project, "since": since, "until": until,
            "outcome": None if outcome == ANY else outcome, "limit": MAX_ROWS}


def _record(row: AuditRow, names: dict[int, str]) -> dict[str, Any]:
    return {"at": row.at.strftime("%Y-%m-%d %H:%M:%S"), "actor": row.actor, "action": row.action,
            "outcome": row.outcome, "project": names.get(row.project_id, row.project_id) if row.project_id else "",
            "document_id": row.document_id, "model_version_id": row.model_version_id, "entity": row.entity,
            "entity_id": row.entity_id, "details": json.dumps(row.details, sort_keys=True, ensure_ascii=False)}


def audit_table(rows: Sequence[AuditRow], names: dict[int, str]) -> None:
    import pandas as pd

    frame = pd.DataFrame([_record(r, names) for r in reversed(rows)], columns=list(AUDIT_COLUMNS))
    st.dataframe(frame, hide_index=True, width="stretch", column_config={"at": "at (UTC)"})


def audit_csv(rows: Sequence[AuditRow], names: dict[int, str]) -> bytes:
    """The rows as CSV, oldest first; every text cell spreadsheet-safe (a leading = + - @ is quoted)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(AUDIT_COLUMNS))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) if v is not None else "" for k, v in _record(row, names).items()})
    return out.getvalue().encode("utf-8")
