"""Queue: which reports to label next. Score the pool (a background job), read the ranked queue with the predicted
entities, save a batch for Label Studio, and see whether more labels still change the model."""

import pandas as pd
import streamlit as st

from core.active import DEFAULT_STRATEGY, STRATEGY_HELP, ScoreConfig, default_ranking, get_strategy, strategy_names
from core.alignment import resolve_overlaps
from core.jobs import JobKind
from core.types import ReportLensError
from services import jobs as job_svc
from services import queue as svc
from services.people import acting_name
from ui.jobs import live_jobs
from ui.render import highlight_html, label_colors, legend_html
from ui.state import engine, project_picker

st.title("Queue")
project = project_picker()
if project is None:
    st.info("No project yet. Import reports on the **Import** page first.")
    st.page_link("pages/import_data.py", label="Import data", icon="📥")
    st.stop()
n_unlabeled = project.n_documents - project.n_labeled
if n_unlabeled == 0:
    st.info(f"**{project.name}** has no unlabeled report: everything is labeled. Import more reports to rank them.")
    st.stop()
version = svc.active_version(engine(), project.id)
if version is None:
    st.info("No trained model yet: scoring ranks the pool by **diversity** over base-model embeddings (cold start), "
            "so the first batch covers the different kinds of report. Train a model after labelling it.")
else:
    st.caption(f"{n_unlabeled} unlabeled reports · active model **{version.name}**. Higher score = label sooner.")

with st.form("score_form"):
    c1, c2, c3 = st.columns(3)
    names = strategy_names()
    strategy = c1.selectbox("Strategy", names, index=names.index(DEFAULT_STRATEGY), key="q_strategy",
                            disabled=version is None, format_func=lambda n: f"{n} (default)" if n == DEFAULT_STRATEGY
                            else n, help="\n".join(f"- **{n}**: {STRATEGY_HELP[n]}" for n in names)
                            + "\n\nThe default is the strategy that did best in `bench/active_learning.py` "
                            "(bench/README.md).")
    passes = c2.number_input("MC-dropout passes (bald)", min_value=2, max_value=50, value=10, step=1, key="q_passes")
    per_token = c3.checkbox("Per-token cost (long reports not favoured)", key="q_per_token")
    go = st.form_submit_button("Score the unlabeled pool", type="primary")
if go:
    try:
        cfg = ScoreConfig(strategy=strategy, per_token=per_token, mc_passes=int(passes))
        job, started = svc.queue_scoring_job(engine(), project.id, cfg)
        st.success(f"Scoring job {job.id} queued" + (" and a worker started." if started else "."), icon="✅")
    except ReportLensError as exc:
        st.error(f"Not queued: {exc}", icon="🚫")


live_jobs(project.id, JobKind.SCORE, rerun_when_done=True)
if failed := job_svc.last_failure(engine(), project.id, JobKind.SCORE):
    st.error(f"The last scoring job ({failed.id}) failed: {failed.error}", icon="🚫")

run = svc.latest_run(engine(), project.id)
if run is None:
    st.info("No scores yet: press **Score the unlabeled pool**.")
    st.stop()
model_txt = f"model {run.model_version}" if run.model_version else "base-model embeddings (cold start)"
st.subheader("Ranked reports")
st.caption(f"Latest run: {run.n_documents} reports, {model_txt}, {run.created_at:%Y-%m-%d %H:%M} UTC.")
f1, f2, f3 = st.columns(3)
picked = str(get_strategy(strategy, per_token=per_token, passes=int(passes)))  # what the form asked for
shown = f1.selectbox("Rank by", run.strategies, index=run.strategies.index(default_ranking(run.strategies, picked)),
                     key="q_rank_by", help="Every run stores all cheap strategies; switch without scoring again.")
labels = ["(any)", *project.labels]
label = f2.selectbox("Predicted label", labels, key="q_label")
limit = int(f3.number_input("Show", min_value=5, max_value=500, value=25, step=5, key="q_limit"))
rows, total, _ = svc.ranked_queue(engine(), project.id, shown, label=None if label == "(any)" else label,
                                  limit=limit)
if not rows:
    st.info("No unlabeled report left in this queue (labeled since the run, in a batch already, or no match for the "
            "label). Score the pool again after the next import.")
    st.stop()
st.dataframe(pd.DataFrame([{
    "rank": r.rank, "score": round(r.score, 4), "strategy": r.strategy, "task id": r.ls_task_id,
    "document": r.document_id, "tokens": r.n_tokens, "characters": r.n_chars,
    "confidence": None if r.confidence is None else round(r.confidence, 3),
    "predicted": ", ".join(f"{e.label} {e.score:.2f}" for e in r.entities), "preview": r.preview,
} for r in rows]), hide_index=True, width="stretch")
st.caption(f"{total} reports in the queue after filters; showing the top {len(rows)}.")
if note := svc.duplicate_note(svc.run_duplicates(engine(), run)):
    st.caption(note)

with st.expander("Predicted entities of the top reports", expanded=False):
    colors = label_colors(project.labels)
    st.html(legend_html(colors))
    texts = svc.document_texts(engine(), [r.document_id for r in rows[:5]])
    for r in rows[:5]:
        text = texts[r.document_id]
        spans, _ = resolve_overlaps(text, [e.span for e in r.entities])
        conf = " · ".join(f"{e.label} {e.score:.2f}" for e in r.entities) or "no entity predicted"
        st.markdown(f"**#{r.rank}** · document {r.document_id} · score {r.score:.4f}")
        st.text(conf)  # labels come from the export: shown as plain text, never as Markdown or HTML
        st.html(highlight_html(text, spans, colors))  # escaped by highlight_html; no Markdown pass over it

st.subheader("Pick a batch")
b1, b2 = st.columns(2)
n_batch = int(b1.number_input("Batch size", min_value=1, max_value=max(1, total), value=min(10, total), step=1,
                              key="q_batch_n"))
b2.caption(f"Saved as **{acting_name()}**.")
if st.button("Save batch", type="primary", key="q_save_batch"):
    picked, _, _ = svc.ranked_queue(engine(), project.id, shown, label=None if label == "(any)" else label,
                                    limit=n_batch)
    try:
        batch = svc.save_batch(engine(), project.id, [r.document_id for r in picked], shown, run.model_version_id, None)
        st.session_state["q_flash"] = (f"Batch {batch.id} saved ({len(batch.document_ids)} reports, {shown}). Send it "
                                       "to annotators from the **Label Studio** page (file download or server).")
        st.rerun()  # the batched reports leave the queue above
    except ReportLensError as exc:
        st.error(f"Not saved: {exc}", icon="🚫")
if flash := st.session_state.pop("q_flash", None):
    st.success(flash, icon="✅")
batches = svc.saved_batches(engine(), project.id)
if batches:
    st.dataframe(pd.DataFrame([{"batch": b.id, "reports": len(b.document_ids), "strategy": b.strategy,
                                "status": b.status, "by": b.created_by, "created": b.created_at} for b in batches]),
                 hide_index=True, width="stretch")

st.subheader("Should we stop labelling?")
advice, changes = svc.stopping_indicator(engine(), project.id)
(st.success if advice.consider_stopping else st.info)(advice.hint)
if changes:
    st.dataframe(pd.DataFrame([{"from": c.before, "to": c.after, "sample reports": c.documents,
                                "entities changed": f"{c.change_rate:.1%}"} for c in changes]),
                 hide_index=True, width="stretch")
