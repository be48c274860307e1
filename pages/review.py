"""Review: a clinician checks the entities suggested for a report, accepts or corrects them, and the finished review
becomes training data (services/review.py explains the policy)."""

import json
import re

import pandas as pd
import streamlit as st

from core.types import ReportLensError, Span
from db.model_versions import list_model_versions
from db.review import worklist
from db.scores import latest_run
from services import review as svc
from ui.render import highlight_html, label_colors, legend_html
from ui.state import engine, project_picker

LOW = "#fca5a5"
POLICY = ("A finished review is training data like an annotator's work and is stored as its own annotation (source "
          "*review*, author = you); nothing is overwritten. If the report has a ground-truth annotation, that one "
          "trains; otherwise the most recent annotation does. A review with suggestions still undecided is saved but "
          "does not train until none is left (or you accept the report).")


def _plain(value: object) -> str:
    """Text (report words, names, messages with snippets) for elements that render Markdown: every Markdown
    character escaped, so nothing in it becomes a link, an image, a heading or an icon."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])", r"\\\1", str(value))


st.title("Review")
project = project_picker()
if project is None:
    st.info("No project yet. Import reports on the **Import** page (or `python cli.py seed-demo`), train a model, "
            "then review what it extracts here.")
    st.page_link("pages/import_data.py", label="Import data", icon="📥")
    st.stop()

reviewer = st.sidebar.text_input("Reviewer", value=st.session_state.get("reviewer_name", ""), placeholder="your name",
                                 key="review_reviewer").strip()
st.session_state["reviewer_name"] = reviewer
threshold = st.sidebar.slider("Low confidence below", 0.0, 1.0, 0.6, 0.05, key="review_threshold")
versions = list_model_versions(engine(), project.id)
if not versions and not svc.extract_available():
    st.info(f"**{_plain(project.name)}** has no trained model yet and no rule extractor is installed, so nothing "
            "can be suggested for review. Train a model on the **Train** page first.")
    st.page_link("pages/train.py", label="Train a model", icon="🏋️")
    st.stop()
version = None
if versions:
    active = next((i for i, v in enumerate(versions) if v.is_active), 0)
    name = st.sidebar.selectbox("Model version", [v.name for v in versions], index=active, key="review_version")
    version = next(v for v in versions if v.name == name)

prog = svc.progress(engine(), project.id)
if prog.total == 0:
    st.info(f"**{_plain(project.name)}** has no report to review. Import some on the **Import** page.")
    st.stop()
c1, c2, c3 = st.columns(3)
c1.metric("Reviewed", f"{prog.reviewed} / {prog.total}")
c2.metric("In progress", prog.in_progress)
c3.metric("Suggestions from", " + ".join(([f"model {version.name}"] if version else [])
                                        + (["rules"] if svc.extract_available() else [])))
st.progress(prog.fraction, text=f"{prog.fraction:.0%} of the project reviewed")

# ---------------------------------------------------------------- worklist
w1, w2, w3 = st.columns([2, 2, 2])
order = w1.radio("Order", ["uncertainty", "document"], horizontal=True, key="review_order",
                 format_func=lambda o: {"uncertainty": "Least sure first", "document": "By document"}[o])
run = latest_run(engine(), project.id)
strategy = None
if order == "uncertainty" and run is not None and run.strategies:
    strategy = w1.selectbox("Uncertainty from", run.strategies, key="review_strategy",
                            help=f"Scores of the latest scoring run ({run.model_version or 'base model'}).")
label_filter = w2.selectbox("Label", ["(any)", *svc.project_labels(engine(), project.id, version)],
                            key="review_label")
hide = w3.checkbox("Hide reviewed", key="review_hide")
rows, total = worklist(engine(), project.id, version_id=version.id if version else None, order=order,
                       label=None if label_filter == "(any)" else label_filter, hide_reviewed=hide,
                       strategy=strategy, limit=50)
if prog.reviewed == prog.total:
    st.success("Every report of this project is reviewed. 🎉")
if not rows:
    st.info("Nothing to review with these filters: clear the label filter or show reviewed reports.")
    st.stop()
with st.expander(f"Worklist ({total} report{'s' if total != 1 else ''}, first {len(rows)} shown)"):
    st.dataframe(pd.DataFrame([{"id": r.document_id, "status": r.status,
                                "uncertainty": r.uncertainty, "confidence": r.confidence,
                                "labels": ", ".join(r.labels), "preview": r.preview} for r in rows]),
                 hide_index=True, width="stretch")
ids = [r.document_id for r in rows]
if st.session_state.get("review_doc") not in ids:
    st.session_state["review_doc"] = ids[0]


def _next_report() -> None:
    i = ids.index(st.session_state["review_doc"])
    st.session_state["review_doc"] = ids[(i + 1) % len(ids)]


# no status in the option text: the browser keeps showing the chosen option's old text after a rerun
previews = {r.document_id: f"#{r.document_id} · {r.preview[:70]}" for r in rows}
n1, n2 = st.columns([6, 1])
doc_id = n1.selectbox("Report", ids, format_func=previews.get, key="review_doc")
n2.button("Next report", on_click=_next_report, shortcut="N", help="Shortcut: N")

try:
    rv = svc.open_report(engine(), doc_id, reviewer, version.id if version else None)
except ReportLensError as exc:
    st.error(_plain(exc))
    st.stop()
text = rv.document.text
status = next(r.status for r in rows if r.document_id == doc_id)
st.caption(f"Report #{doc_id}" + (f" (Label Studio task {rv.document.ls_task_id})" if rv.document.ls_task_id else "")
           + f" · {status} · suggestions: {rv.suggestions.origin}")
if not text:
    st.info("This report has no text; pick another one.")
    st.stop()
flash = st.session_state.pop("review_flash", None)
if flash:
    st.success(_plain(flash))
if not reviewer:
    st.warning("Type your name in **Reviewer** (sidebar) to record decisions.", icon="✍️")
for _source, author, spans, gt in rv.differing:
    who = _plain(author or "an annotator")
    st.warning(f"This report already has an annotation by **{who}** ({len(spans)} entities"
               f"{', ground truth' if gt else ''}) that differs from your review. Both are kept; the next training "
               f"run uses **{_plain(rv.trains)}**.", icon="⚖️")
annotators = [a for a in rv.document.annotations if a.source == "human" and not a.cancelled]
if annotators and rv.state.annotation_id is None:
    names = ", ".join(sorted({_plain(a.author or "an annotator") for a in annotators}))
    st.info(f"Already annotated by {names}. Your review will be stored as a separate annotation; their work stays "
            "as it is.", icon="👥")
if rv.state.annotation_id is not None and not rv.state.complete and rv.pending:
    st.info(f"{len(rv.pending)} suggestion(s) still wait for a decision: your review is saved but does not train "
            "until none is left (or you accept the report).")
st.caption(POLICY)

# ---------------------------------------------------------------- the report
shown = [it for it in rv.items if it.status != "decided"]
colors = label_colors(svc.project_labels(engine(), project.id, version, [it.entity for it in rv.items]))
marks, mark_colors = [], {}
for it in shown:
    e = it.entity
    low = it.status == "pending" and e.score < threshold
    tag = f"{e.label} {'✓' if it.in_review else f'{e.score:.2f}'}{' ⚠' if low else ''}"
    marks.append(Span(e.start, e.end, tag))
    mark_colors[tag] = LOW if low else colors.get(e.label, "#e5e7eb")
st.html(legend_html({k: v for k, v in colors.items() if any(it.entity.label == k for it in shown)}
                    | ({"low confidence ⚠": LOW} if any(m.label.endswith("⚠") for m in marks) else {})))
st.html(highlight_html(text, marks, mark_colors))
if not rv.candidates:
    st.caption("Nothing was suggested for this report: add missing entities below, or accept the report as it is.")
table = [{"#": i + 1, "text": text[it.entity.start:it.entity.end], "label": it.entity.label,
          "start": it.entity.start, "end": it.entity.end, "confidence": round(it.entity.score, 3),
          "source": it.entity.source, "status": it.status,
          "low": it.status == "pending" and it.entity.score < threshold}
         for i, it in enumerate(shown)]
if table:
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")


def _decide(action: str, done: str, **kw) -> None:
    try:
        svc.decide(engine(), doc_id, reviewer, action, version_id=version.id if version else None,
                   candidates=rv.candidates, **kw)
    except ReportLensError as exc:
        st.error(_plain(exc))
        return
    st.session_state["review_flash"] = done
    # a new key for the entity picker: a fresh widget focused on the next pending suggestion (changing only its
    # default would leave the browser showing the old choice)
    st.session_state["review_seq"] = st.session_state.get("review_seq", 0) + 1
    st.rerun()


def _snapped(start: int, end: int) -> tuple[int, int] | None:
    try:
        s, e = svc.snap_range(svc.project_tokenizer(engine(), project.id, version), text, int(start), int(end))
    except ReportLensError as exc:
        st.caption(f"⚠️ {_plain(exc)}")
        return None
    st.text(f"→ [{s}, {e}) “{text[s:e]}”")
    return s, e


labels = svc.project_labels(engine(), project.id, version, rv.candidates)
locked = not reviewer
# ---------------------------------------------------------------- one entity
if shown:
    st.subheader("Entity")
    first = next((i for i, it in enumerate(shown) if it.status == "pending"), 0)
    pick = st.selectbox("Entity", range(len(shown)), index=first,
                        key=f"review_pick_{doc_id}_{st.session_state.get('review_seq', 0)}",
                        format_func=lambda i: f"#{i + 1} {shown[i].entity.label} · "
                        f"{text[shown[i].entity.start:shown[i].entity.end][:50]!r} · {shown[i].status}")
    item = shown[pick]
    ent = item.entity
    b1, b2, _ = st.columns([1, 1, 5])
    if b1.button("Accept", shortcut="A", disabled=locked or item.in_review, type="primary", help="Shortcut: A"):
        _decide("accept", f"Accepted {ent.label} “{text[ent.start:ent.end]}”.", entity=ent)
    if b2.button("Reject", shortcut="X", disabled=locked, help="Shortcut: X"):
        _decide("reject", f"Rejected {ent.label} “{text[ent.start:ent.end]}”.", entity=ent)
    r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
    others = [lab for lab in labels if lab != ent.label] or labels
    new_label = r1.selectbox("New label", others, key=f"review_label_{doc_id}_{ent.start}_{ent.end}_{ent.label}")
    if r2.button("Relabel", shortcut="L", disabled=locked, help="Shortcut: L"):
        _decide("relabel", f"Relabelled “{text[ent.start:ent.end]}” as {new_label}.", entity=ent, label=new_label)
    k = f"{doc_id}_{ent.start}_{ent.end}_{ent.label}"
    s1, s2, s3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    new_start = s1.number_input("Start", 0, len(text) - 1, ent.start, key=f"review_start_{k}")
    new_end = s2.number_input("End", 1, len(text), ent.end, key=f"review_end_{k}")
    snapped = _snapped(new_start, new_end)
    if s3.button("Change boundaries", shortcut="B", disabled=locked or snapped is None, help="Shortcut: B"):
        _decide("adjust", f"Boundaries of {ent.label} changed.", entity=ent, start=int(new_start), end=int(new_end))

# ---------------------------------------------------------------- add, accept the report
with st.expander("Add a missing entity", expanded=not rv.candidates):
    find = st.text_input("Words to find (sets start and end to their first occurrence)", key=f"review_find_{doc_id}")
    pos = text.find(find) if find else -1
    if find and pos < 0:
        st.caption("⚠️ Not found in the report; type the words exactly as written, or give start and end.")
    a1, a2, a3 = st.columns(3)
    add_start = a1.number_input("Start", 0, len(text) - 1, max(pos, 0), key=f"review_add_start_{doc_id}_{pos}")
    add_end = a2.number_input("End", 1, len(text), pos + len(find) if pos >= 0 else min(len(text), 1),
                              key=f"review_add_end_{doc_id}_{pos}")
    add_label = a3.selectbox("Label", labels or ["(no label)"], key=f"review_add_label_{doc_id}")
    snapped_add = _snapped(add_start, add_end)
    if st.button("Add entity", shortcut="D", disabled=locked or snapped_add is None or not labels, help="Shortcut: D"):
        _decide("add", f"Added {add_label}.", start=int(add_start), end=int(add_end), label=add_label)

if st.button(f"Accept report ({len(rv.pending)} pending suggestion(s) accepted)", shortcut="Shift+A",
             disabled=locked, type="primary", help="Shortcut: Shift+A"):
    _decide("accept_all", "Report accepted.")

# ---------------------------------------------------------------- structured result, project CSV
st.subheader("Structured result")
result = svc.structured(rv)
if result is None:
    st.caption("The structured result (JSON) and the project CSV appear here once the rule extractor is installed.")
else:
    st.json(result, expanded=False)
    st.download_button("Download JSON", json.dumps(result, ensure_ascii=False, indent=1),
                       file_name=f"report-{doc_id}.json", mime="application/json")
    if st.button("Prepare project CSV"):
        st.session_state["review_csv"] = (project.id, svc.project_csv(engine(), project.name))
    csv = st.session_state.get("review_csv")
    if csv and csv[0] == project.id and csv[1] is not None:
        st.download_button("Download project CSV", csv[1], file_name=f"{project.name}-structured.csv",
                           mime="text/csv")
