"""Server-side cost of one refresh of the live-progress panel (``ui.jobs.live_jobs``, every 2 s on the Train, Queue and
Overview pages while a job runs), issue 17.

    python bench/fragment_bench.py [--history 1000] [--repeats 30] [--out bench/out/fragment.json]

A fresh SQLite file (migrated) gets a small project, a ``train`` job and a ``score`` job, both claimed (``running``)
by this process; the train job gets ``--history`` progress points through ``jobs.queue.heartbeat`` as a training run
writes them (``step``, ``epoch``, ``loss``, ``learning_rate``, and a dev F1 point every 50 steps; 1,000 is
``HISTORY_CAP``, what a long run ends with). Then, each as the median of ``--repeats`` runs:

- ``apptest_train`` / ``apptest_queue``: ``streamlit.testing.v1.AppTest`` running a script that is only the panel, as
  the Train page calls it (``curves=True``, all kinds) and as the Queue page does (``JobKind.SCORE``, no curves);
  ``panel_median_s`` is the panel call timed inside the script (what a refresh costs the server, the browser's
  drawing aside), ``apptest_median_s`` the whole AppTest run (its thread start and polling included);
  ``apptest_empty`` is the same harness on a script that draws one caption; ``--profile N`` prints cProfile's top N
  functions of the train panel's runs (inside the script thread);
- the parts, timed outside Streamlit: ``active_jobs`` (the database read: ``services.jobs.active_jobs``, history
  included), ``figure_build`` (the DataFrame and the plotly figure of ``ui.jobs.loss_curves``), ``plotly_validate``
  and ``plotly_to_json`` (what ``st.plotly_chart`` does with the figure: validation, then JSON for the browser), and
  the JSON size sent per refresh; ``loss_curves_bare_s`` is the real ``ui.jobs.loss_curves`` outside a script run
  (Streamlit's bare mode: the chart is built and serialised, nothing is sent).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def median_time(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def setup(url: str, history: int) -> tuple[int, int, int]:
    """The project, a running train job with ``history`` points and a running score job; their ids."""
    from core.jobs import JobKind
    from core.types import Annotation, ParsedTask, Span
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.migrate import upgrade
    from jobs import queue

    upgrade(url)
    engine = make_engine(url)
    tasks = [ParsedTask(text=f"Report {i}: sinus rhythm, normal axis.", task_id=i + 1, position=i,
                        annotations=(Annotation(source="human", spans=(Span(11, 23, "RHYTHM"),)),))
             for i in range(20)]
    import_tasks(engine, "bench", tasks, source="conll")
    train = queue.enqueue(engine, 1, JobKind.TRAIN, {})
    queue.claim_next(engine, "bench-worker", [JobKind.TRAIN])
    max_steps = max(history, 1)
    points = []
    for step in range(1, history + 1):
        p = {"phase": "train", "epoch": round(step / 100, 4), "step": step, "max_steps": max_steps,
             "loss": 2.0 / (1 + step / 50), "learning_rate": 2e-3 * (1 - step / max_steps), "dev": None,
             "elapsed_s": step * 1.5, "eta_s": (max_steps - step) * 1.5}
        if step % 50 == 0:
            p = {**p, "phase": "evaluate", "dev": {"precision": 0.5, "recall": 0.5, "f1": min(0.9, step / max_steps),
                                                   "per_label_f1": {"RHYTHM": 0.5}}}
        points.append(p)
    for b in range(0, len(points), 100):  # as a worker does: a few reports per heartbeat
        queue.heartbeat(engine, train.id, points[b:b + 100])
    score = queue.enqueue(engine, 1, JobKind.SCORE, {})
    queue.claim_next(engine, "bench-worker", [JobKind.SCORE])
    queue.heartbeat(engine, score.id, {"phase": "score", "step": 10, "max_steps": 100, "elapsed_s": 5.0})
    return 1, train.id, score.id


TIMES = "_reportlens_fragment_times"  # a module in sys.modules: how the scripts (run by AppTest) hand back timings


def train_panel(project_id: int) -> None:
    import sys
    import time

    from services.auth import act_as, local_actor
    from ui.jobs import live_jobs

    rec = sys.modules["_reportlens_fragment_times"]
    if rec.profile is not None:
        rec.profile.enable()
    t = time.perf_counter()
    with act_as(local_actor()):  # single-user mode, as the app acts
        live_jobs(project_id, curves=True, empty="No training job is running.", rerun_when_done=True)
    rec.times.setdefault("train", []).append(time.perf_counter() - t)
    if rec.profile is not None:
        rec.profile.disable()


def queue_panel(project_id: int) -> None:
    import sys
    import time

    from core.jobs import JobKind
    from services.auth import act_as, local_actor
    from ui.jobs import live_jobs

    rec = sys.modules["_reportlens_fragment_times"]
    t = time.perf_counter()
    with act_as(local_actor()):
        live_jobs(project_id, JobKind.SCORE, rerun_when_done=True)
    rec.times.setdefault("queue", []).append(time.perf_counter() - t)


def empty_script(project_id: int) -> None:
    import streamlit as st

    st.caption(f"project {project_id}")


def recorder() -> types.ModuleType:
    rec = sys.modules.get(TIMES)
    if rec is None:
        rec = types.ModuleType(TIMES)
        rec.times, rec.profile = {}, None
        sys.modules[TIMES] = rec
    return rec


def apptest_median(script, project_id: int, repeats: int) -> dict:  # noqa: ANN001
    """``script`` under AppTest: the first run and the median of the next ``repeats`` (AppTest's own polling
    included), the panel's own time measured inside the script, and the elements drawn."""
    from streamlit.testing.v1 import AppTest

    rec = recorder()
    rec.times.clear()
    at = AppTest.from_function(script, args=(project_id,), default_timeout=60)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    if at.exception:
        raise SystemExit(f"{script.__name__} raised under AppTest: {at.exception}")
    med = median_time(at.run, repeats)
    inside = next(iter(rec.times.values()), [])
    return {"first_run_s": round(first, 4), "apptest_median_s": round(med, 4),
            "panel_first_s": round(inside[0], 4) if inside else None,
            "panel_median_s": round(statistics.median(inside[1:]), 4) if len(inside) > 1 else None,
            "elements": len(list(at.main))}


def profile_train_panel(project_id: int, repeats: int, top: int) -> None:
    """cProfile of the train panel's runs, inside the script thread (cumulative, top ``top``), to stderr."""
    import cProfile
    import pstats

    from streamlit.testing.v1 import AppTest

    rec = recorder()
    at = AppTest.from_function(train_panel, args=(project_id,), default_timeout=60)
    at.run()
    rec.profile = cProfile.Profile()
    for _ in range(repeats):
        at.run()
    prof, rec.profile = rec.profile, None
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history", type=int, default=1000, help="progress points of the running train job")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "fragment.json"))
    ap.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions of the train panel runs")
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="reportlens-fragment-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        os.environ["REPORTLENS_DATABASE_URL"] = url
        os.environ["REPORTLENS_DATA_DIR"] = str(Path(tmp) / "data")
        os.chdir(ROOT)
        project_id, train_id, score_id = setup(url, args.history)

        import plotly.graph_objects as go
        import plotly.io
        import plotly.tools

        from core.jobs import JobKind
        from db.engine import make_engine
        from services import jobs as job_svc
        from services.auth import act_as, local_actor

        engine = make_engine(url)
        out: dict = {"history_points": args.history, "repeats": args.repeats, "cores": os.cpu_count(),
                     "load_avg_before": load_before}
        r = args.repeats
        for name, script in (("apptest_empty", empty_script), ("apptest_train", train_panel),
                             ("apptest_queue", queue_panel)):
            out[name] = apptest_median(script, project_id, r)
        bound = act_as(local_actor(), engine)
        bound.__enter__()
        jobs = job_svc.active_jobs(engine, project_id)
        assert [j.id for j in jobs] == [train_id, score_id], jobs
        history = jobs[0].history
        out["history_points_stored"] = len(history)
        out["active_jobs_all_s"] = round(median_time(lambda: job_svc.active_jobs(engine, project_id), r), 4)
        out["active_jobs_score_s"] = round(
            median_time(lambda: job_svc.active_jobs(engine, project_id, JobKind.SCORE), r), 4)

        from ui.jobs import loss_curves, loss_figure

        def figure() -> go.Figure:  # ui.jobs.loss_curves without st.plotly_chart
            return loss_figure(history)

        fig = figure()
        out["figure_build_s"] = round(median_time(figure, r), 4)
        out["plotly_validate_s"] = round(median_time(
            lambda: plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), r), 4)
        out["plotly_to_json_s"] = round(median_time(lambda: plotly.io.to_json(fig, validate=False), r), 4)
        out["plotly_json_bytes"] = len(plotly.io.to_json(fig, validate=False))
        out["loss_curves_bare_s"] = round(median_time(lambda: loss_curves(history), r), 4)  # st in bare mode
        out["loss_curves_cached_s"] = round(median_time(lambda: loss_curves(history, jobs[0].id), r), 4)
        parts = out["active_jobs_all_s"] + out["loss_curves_bare_s"]
        out["train_panel_parts_s"] = round(parts, 4)
        if args.profile:
            profile_train_panel(project_id, r, args.profile)
        out["load_avg_after"] = os.getloadavg()
        bound.__exit__(None, None, None)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
