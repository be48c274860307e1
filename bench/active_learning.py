"""Active-learning benchmark: does "label these next" save labels? A simulation on fully labelled corpora.

    python bench/active_learning.py                                   # demo corpus, the default (sized) run
    python bench/active_learning.py --strategies random margin --seeds 0 --rounds 3   # a quick look
    python bench/active_learning.py --corpus maccrobat --pool-limit 60 --test-size 30 --rounds 4 --batch 8
    python bench/active_learning.py --report bench/out/al-demo.json   # chart + table again from a saved run

Every labelled document of the corpus is imported into a fresh SQLite file. A fixed test split (the ``--test-size``
documents with the smallest hash of their stable key, the same for every seed and strategy) is never queried; the
other documents (at most ``--pool-limit``, again by hash) form the pool whose gold spans are hidden until queried.

Per seed: a random seed set of ``--seed-size`` documents is "labelled" and a model trained on it
(:func:`training.trainer.run_training`, default LoRA config with a fixed small ``--max-steps``). Then, for each
strategy: score the remaining pool with the current model (:func:`training.scoring.score_documents`, computing what
the strategy needs), pick the top ``--batch`` documents (:func:`core.active.select_batch`: the top of the ranking the
Queue stores for that pool, duplicate keys and labelled centres included), reveal their gold spans, retrain from the
base model on everything labelled so far, and record strict entity F1 on the test split against the number of
labelled documents and labelled (word-piece) tokens. ``--rounds`` counts the trained models per curve (round 0 = the
seed set, shared by all strategies of a seed). The full-data F1 is a model trained the same way on the whole pool.

Output under ``bench/out/``: ``al-<corpus>.json`` (every point, timings), ``al-<corpus>.html`` and ``.png`` (plotly
learning curves; the PNG through kaleido with the local Chromium) and ``al-<corpus>.md`` (labels needed to reach 95%
of the full-data F1 per strategy vs random).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.train_bench import MACCROBAT_LABELS, make_project  # noqa: E402
from core.active import REGISTRY, Pool, QueryStrategy, get_strategy, select_batch  # noqa: E402
from core.active.duplicates import text_key  # noqa: E402
from core.split import DocumentSplit, document_key, hash_unit  # noqa: E402
from core.types import ReportLensError  # noqa: E402

DEFAULT_STRATEGIES = ("random", "margin", "mnlp", "diversity")
TARGET_SHARE = 0.95  # "labels needed to reach 95% of the full-data F1"
DEV_DOCS = 2  # dev = the first labelled documents (dev_is_train): only progress reports use it, kept tiny for speed
Log = Callable[[str], None]
# "random" is the baseline: uniform over the pool, copies of a text included, as an annotator would go without the
# queue. "random_distinct" is random through the queue's duplicate handling (each text once, labelled texts last), so
# a table can tell how much of a strategy's gain is only that.
RANDOM_DISTINCT = "random_distinct"


def registry_name(strategy: str) -> str:
    """The core.active registry name behind a benchmark arm."""
    return "random" if strategy == RANDOM_DISTINCT else strategy


# ---------------------------------------------------------------- corpus and splits


def fixed_split(docs: Sequence[Any], test_size: int, pool_limit: int | None) -> tuple[list[Any], list[Any]]:
    """``(test ids, pool ids)``: documents ordered by the hash of their stable key; the first ``test_size`` are the
    test split, the next ``pool_limit`` (all when ``None``) the pool. Independent of the seed and the strategy."""
    if test_size < 1:
        raise ReportLensError(f"--test-size must be at least 1, got {test_size}.")
    order = sorted(docs, key=lambda d: hash_unit(document_key(d.meta.get("ls_task_id"), d.text), 0))
    test = [d.id for d in order[:test_size]]
    pool = [d.id for d in order[test_size:]]
    if pool_limit is not None:
        pool = pool[:pool_limit]
    return test, pool


def token_counts(tokenizer: Any, docs: Sequence[Any], config: Any) -> dict[Any, int]:
    """Word-piece tokens per document (what an annotator's cost is counted in)."""
    from training.inference import prepare_documents

    prepared = prepare_documents(tokenizer, [(d.id, d.text) for d in docs], config.align())
    return {d.id: len(p.doc) for d, p in zip(docs, prepared, strict=True)}


# ---------------------------------------------------------------- one round: train, evaluate, score


class Simulator:
    """Trains and scores on one imported project; every model goes to its own folder under ``work_dir``."""

    def __init__(self, engine: Any, project_id: int, config: Any, work_dir: Path, log: Log = print,
                 mc_passes: int = 10, dedupe: bool = True, centres: bool = True) -> None:
        from training.trainer import load_project_data

        self.engine, self.project_id, self.config, self.work_dir, self.log = engine, project_id, config, work_dir, log
        self.mc_passes, self.dedupe, self.centres = mc_passes, dedupe, centres
        _, docs, self.schema = load_project_data(engine, project_id)
        self.docs = {d.id: d for d in docs}
        self.keys = {d.id: text_key(d.text) for d in docs}
        self.n_models = 0

    def train(self, labelled: Sequence[Any], test: Sequence[Any], seed: int) -> tuple[float, str, float]:
        """``(test F1, model folder, seconds)`` of a model trained on ``labelled``."""
        from training.trainer import run_training

        t = time.monotonic()
        self.n_models += 1
        out = self.work_dir / f"model-{self.n_models}"
        split = DocumentSplit(train=tuple(labelled), dev=tuple(labelled[:DEV_DOCS]), test=tuple(test),
                              dev_is_train=True)
        result = run_training(self.engine, self.project_id, replace(self.config, seed=seed), out, split=split)
        if result.cancelled or result.metrics["test"] is None:
            raise ReportLensError(f"Training on {len(labelled)} documents did not finish; see the log above.")
        return float(result.metrics["test"]["f1"]), str(out), time.monotonic() - t

    def score(self, model_dir: str, pool: Sequence[Any], strategy: QueryStrategy, labelled: Sequence[Any] = ()) -> Pool:
        """The pool under the model in ``model_dir``, with what ``strategy`` needs (probabilities, MC passes,
        embeddings, and the embeddings of the ``labelled`` reports as the diversity centres when ``centres``), as
        the scoring run computes them. Duplicate keys are added by :meth:`query`."""
        from core.active import ScoreConfig
        from training.inference import clear_model_cache, load_model
        from training.scoring import labelled_centres, score_documents

        loaded = load_model(model_dir)
        scored = score_documents(loaded.model, loaded.tokenizer, [(i, self.docs[i].text) for i in pool],
                                 loaded.config.align(), ScoreConfig(mc_passes=self.mc_passes), loaded.schema,
                                 strategies=[strategy])
        if scored is None:
            raise ReportLensError("Scoring stopped without a stop request; this is a bug.")
        out = scored[0]
        if self.centres and labelled and strategy.needs_embeddings:
            out = replace(out, labelled=labelled_centres(loaded.model, loaded.tokenizer,
                                                         [self.docs[i].text for i in labelled], loaded.config.align()))
        clear_model_cache()
        return out

    def query(self, strategy: str, model_dir: str, pool: Sequence[Any], n: int, seed: int,
              cached: dict[str, Any] | None = None, labelled: Sequence[Any] = ()) -> tuple[list[Any], float]:
        """The ``n`` pool documents ``strategy`` asks for next (ids) and the seconds it took (scoring included).
        With ``dedupe`` (the product's queue), a batch holds each text once and texts of ``labelled`` come last."""
        t = time.monotonic()
        s = get_strategy(registry_name(strategy), seed=seed, passes=self.mc_passes)
        dup: dict[str, Any] = {}
        if self.dedupe and strategy != "random":  # the baseline samples like an annotator without the queue
            dup = {"keys": [self.keys[i] for i in pool], "known": {self.keys[i] for i in labelled}}
        if not (s.needs_probs or s.needs_passes or s.needs_embeddings):
            scored = Pool(size=len(pool))  # nothing to compute: no forward pass
        else:
            key = (s.needs_probs, s.needs_passes, s.needs_embeddings)  # what the forward pass computed
            scored = cached.get(key) if cached is not None else None
            if scored is None:
                scored = self.score(model_dir, pool, s, labelled)
                if cached is not None:
                    cached[key] = scored
        picks = select_batch(s, replace(scored, **dup), n)
        return [pool[i] for i in picks], time.monotonic() - t


def simulate(sim: Simulator, strategies: Sequence[str], seeds: Sequence[int], rounds: int, batch: int,
             seed_size: int, test: Sequence[Any], pool: Sequence[Any], tokens: dict[Any, int],
             full_data: bool = True) -> dict[str, Any]:
    """Learning curves ``runs[i] = {"strategy", "seed", "points": [{"round", "docs", "tokens", "f1", ...}]}``
    (one point per round) and the full-data F1 per seed."""
    for name in strategies:
        get_strategy(registry_name(name))  # unknown names fail before any training
    if rounds < 1 or batch < 1 or seed_size < 1:
        raise ReportLensError(f"--rounds, --batch and --seed-size must be >= 1; got {rounds}, {batch}, {seed_size}.")
    need = seed_size + batch * (rounds - 1)
    if need > len(pool):
        raise ReportLensError(f"{rounds} rounds of {batch} after a seed set of {seed_size} need {need} pool documents; "
                              f"the pool has {len(pool)}. Lower --rounds/--batch or raise --pool-limit.")
    if set(test) & set(pool):
        raise ReportLensError("The test split and the pool overlap; this is a bug in the split.")
    runs: list[dict[str, Any]] = []
    full: list[dict[str, Any]] = []
    for seed in seeds:
        seed_set = random.Random(seed).sample(list(pool), seed_size)
        f1_0, dir_0, train_s = sim.train(seed_set, test, seed)
        sim.log(f"seed {seed}: seed set of {seed_size} docs -> test F1 {f1_0:.3f} ({train_s:.0f} s)")
        first_scores: dict[str, Any] = {}  # the round-0 pool forward pass, shared by the strategies of this seed
        for name in strategies:
            labelled = list(seed_set)
            model_dir = dir_0
            points = [{"round": 0, "docs": len(labelled), "tokens": sum(tokens[i] for i in labelled),
                       "distinct": len({sim.keys[i] for i in labelled}), "f1": f1_0,
                       "train_s": round(train_s, 1), "query_s": 0.0, "queried": []}]
            for r in range(1, rounds):
                done = set(labelled)
                remaining = [i for i in pool if i not in done]
                picks, query_s = sim.query(name, model_dir, remaining, batch, seed * 1000 + r,
                                           first_scores if r == 1 else None, labelled)
                labelled += picks
                f1, model_dir, t_s = sim.train(labelled, test, seed)
                points.append({"round": r, "docs": len(labelled), "tokens": sum(tokens[i] for i in labelled),
                               "distinct": len({sim.keys[i] for i in labelled}), "f1": f1, "train_s": round(t_s, 1),
                               "query_s": round(query_s, 1), "queried": picks})
                sim.log(f"seed {seed} {name} round {r}: {len(labelled)} docs -> test F1 {f1:.3f} "
                        f"(query {query_s:.0f} s, train {t_s:.0f} s)")
            runs.append({"strategy": name, "seed": seed, "seed_set": seed_set, "points": points,
                         "centres": sim.centres, "dedupe": sim.dedupe})
        if full_data:
            f1, _, t_s = sim.train(list(pool), test, seed)
            full.append({"seed": seed, "docs": len(pool), "tokens": sum(tokens[i] for i in pool), "f1": f1,
                         "train_s": round(t_s, 1)})
            sim.log(f"seed {seed}: full pool of {len(pool)} docs -> test F1 {f1:.3f} ({t_s:.0f} s)")
    return {"runs": runs, "full": full}


# ---------------------------------------------------------------- summary: mean curves, labels to 95%


def arm_name(run: dict[str, Any]) -> str:
    """The name a run is reported under: its strategy, marked where it ran without the queue's behaviour (runs saved
    before a flag existed ran without it: diversity without labelled centres)."""
    name = run["strategy"]
    record = REGISTRY.get(registry_name(name))
    if record is not None and record.needs_embeddings and not run.get("centres", False):  # the diversity arms
        name += "_nocentres"
    if name != "random" and run.get("dedupe") is False:
        name += "_nodedupe"
    return name


def mean_curves(runs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Per strategy, per number of labelled documents: mean/std of F1 and mean tokens over the runs that got there
    (the seeds; merged runs with another batch size add points, e.g. a longer random curve)."""
    by: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for run in runs:
        for p in run["points"]:
            by.setdefault(arm_name(run), {}).setdefault(int(p["docs"]), []).append(p)
    out: dict[str, list[dict[str, float]]] = {}
    for name, sizes in by.items():
        out[name] = [{"round": r, "docs": float(n),
                      "tokens": float(np.mean([p["tokens"] for p in ps])),
                      "distinct": float(np.mean([p.get("distinct", p["docs"]) for p in ps])),
                      "f1": float(np.mean([p["f1"] for p in ps])), "f1_std": float(np.std([p["f1"] for p in ps])),
                      "seeds": len(ps)} for r, (n, ps) in enumerate(sorted(sizes.items()))]
    return out


def labels_to_reach(curve: Sequence[dict[str, float]], target: float) -> tuple[float | None, float | None]:
    """``(documents, tokens)`` at the first round whose mean F1 reaches ``target``; ``(None, None)`` if none does."""
    for p in curve:
        if p["f1"] >= target:
            return p["docs"], p["tokens"]
    return None, None


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The table: labels needed per strategy vs random, and whether the issue's target is met."""
    curves = mean_curves(result["runs"])
    full_f1 = float(np.mean([f["f1"] for f in result["full"]])) if result["full"] else None
    rows = []
    max_docs = max((p["docs"] for c in curves.values() for p in c), default=0)
    target = TARGET_SHARE * full_f1 if full_f1 is not None else None
    common = set.intersection(*({p["docs"] for p in c} for c in curves.values())) if curves else set()
    for name, curve in curves.items():
        docs, toks = labels_to_reach(curve, target) if target is not None else (None, None)
        # over the sizes every arm reached, so an arm run further (a longer random curve) is compared like for like
        auc = float(np.mean([p["f1"] for p in curve if p["docs"] in common] or [p["f1"] for p in curve]))
        rows.append({"strategy": name, "docs_to_target": docs, "tokens_to_target": toks, "mean_f1_over_rounds": auc,
                     "final_f1": curve[-1]["f1"], "final_docs": curve[-1]["docs"],
                     "final_distinct": curve[-1].get("distinct", curve[-1]["docs"])})
    random_row = next((r for r in rows if r["strategy"] == "random"), None)
    for r in rows:
        base = random_row["docs_to_target"] if random_row else None
        r["docs_vs_random"] = (r["docs_to_target"] / base) if (base and r["docs_to_target"] is not None) else None
    others = [r for r in rows if r["strategy"] != "random"]
    # best: fewest documents to the target, then the highest mean F1 over the rounds (area under the curve)
    best = min(others, key=lambda r: (r["docs_to_target"] if r["docs_to_target"] is not None else float("inf"),
                                      -r["mean_f1_over_rounds"]), default=None)
    met = None
    if best is not None and random_row is not None and target is not None and best["docs_to_target"] is not None:
        if random_row["docs_to_target"] is not None:
            met = best["docs_to_target"] <= 0.5 * random_row["docs_to_target"]
        else:  # random never got there within its rounds: it needs more than its last size
            met = True if best["docs_to_target"] <= 0.5 * random_row["final_docs"] else None
    return {"full_f1": full_f1, "target_f1": target, "rows": rows, "best": best["strategy"] if best else None,
            "target_met": met, "max_docs": max_docs, "curves": curves}


def table_markdown(summary: dict[str, Any]) -> str:
    def num(x: float | None, reached: float, fmt: str = "{:.0f}") -> str:
        return f"> {reached:.0f}" if x is None else fmt.format(x)

    lines = [f"Full-data test F1 {summary['full_f1']:.3f}; target (95%) {summary['target_f1']:.3f}." if
             summary["full_f1"] is not None else "No full-data run.", "",
             "| strategy | docs to 95% | tokens to 95% | docs vs random | mean F1 (sizes all arms reached) "
             "| final F1 (docs) | distinct texts at the end |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(summary["rows"], key=lambda r: (r["strategy"] != "random", r["strategy"])):
        ratio = "n/a" if r["docs_vs_random"] is None else f"{r['docs_vs_random']:.2f}x"
        toks = "n/a" if r["tokens_to_target"] is None else f"{r['tokens_to_target']:.0f}"
        lines.append(f"| {r['strategy']} | {num(r['docs_to_target'], r['final_docs'])} | {toks} | {ratio} | "
                     f"{r['mean_f1_over_rounds']:.3f} | {r['final_f1']:.3f} ({r['final_docs']:.0f}) | "
                     f"{r['final_distinct']:.0f} |")
    verdict = {True: "met", False: "not met", None: "undecided (not reached within the simulated rounds)"}
    lines += ["", f"Best strategy: {summary['best']}; target (best reaches 95% with at most half of random's "
                  f"documents): {verdict[summary['target_met']]}."]
    return "\n".join(lines)


# ---------------------------------------------------------------- chart


def make_figure(summary: dict[str, Any], title: str) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("test F1 vs labelled documents", "test F1 vs labelled tokens"))
    palette = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880"]
    for k, (name, curve) in enumerate(sorted(summary["curves"].items(), key=lambda kv: kv[0] != "random")):
        color = "#444" if name == "random" else palette[k % len(palette)]
        dash = "dash" if name == "random" else "solid"
        for col, x in ((1, "docs"), (2, "tokens")):
            fig.add_trace(go.Scatter(
                x=[p[x] for p in curve], y=[p["f1"] for p in curve], mode="lines+markers", name=name,
                legendgroup=name, showlegend=col == 1, line={"color": color, "dash": dash},
                error_y={"type": "data", "array": [p["f1_std"] for p in curve], "visible": True, "thickness": 1}),
                row=1, col=col)
    if summary["target_f1"] is not None:
        for col in (1, 2):  # labels only on the left panel (plotly writes "new text" for an empty annotation)
            full_label = {"annotation_text": "full data"} if col == 1 else {}
            target_label = {"annotation_text": "95% of full data"} if col == 1 else {}
            fig.add_hline(y=summary["full_f1"], line={"color": "#888", "width": 1}, row=1, col=col, **full_label)
            fig.add_hline(y=summary["target_f1"], line={"color": "#888", "width": 1, "dash": "dot"}, row=1, col=col,
                          **target_label)
    fig.update_yaxes(title_text="entity F1 (strict, test split)", row=1, col=1)
    fig.update_xaxes(title_text="labelled documents", row=1, col=1)
    fig.update_xaxes(title_text="labelled word-piece tokens", row=1, col=2)
    fig.update_layout(title=title, width=1200, height=520, template="plotly_white")
    return fig


def write_chart(summary: dict[str, Any], title: str, html: Path, png: Path, log: Log = print) -> bool:
    """HTML (plotly.js inlined: opens offline) and PNG (kaleido + local Chromium). False if the PNG failed."""
    fig = make_figure(summary, title)
    fig.write_html(html, include_plotlyjs=True, full_html=True)
    if not os.environ.get("BROWSER_PATH") and Path("/usr/bin/chromium").exists():
        os.environ["BROWSER_PATH"] = "/usr/bin/chromium"  # kaleido 1.x drives a local Chrome/Chromium
    try:
        fig.write_image(png, scale=1)
    except Exception as exc:  # noqa: BLE001 - the HTML is written; the PNG is optional, say why it is missing
        log(f"PNG not written ({type(exc).__name__}: {exc}); the HTML chart is at {html}. Install kaleido "
            "(requirements.txt) and make a Chrome/Chromium available (BROWSER_PATH).")
        return False
    return True


# ---------------------------------------------------------------- command line


def merge(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Runs of the same corpus and settings (e.g. one process per seed) as one result."""
    first = results[0]
    for r in results[1:]:
        if r["corpus"] != first["corpus"] or r["test_ids"] != first["test_ids"]:
            raise ReportLensError("Only runs of the same corpus and test split can be merged.")
    seeds = sorted({s for r in results for s in r["args"]["seeds"]})
    return first | {"runs": [x for r in results for x in r["runs"]], "full": [x for r in results for x in r["full"]],
                    "args": first["args"] | {"seeds": seeds}, "duration_s": [r["duration_s"] for r in results]}


def report(result: dict[str, Any], out_dir: Path, name: str | None = None, log: Log = print) -> dict[str, Any]:
    summary = summarise(result)
    stem = out_dir / (name or f"al-{result['corpus']}")
    a = result["args"]
    title = (f"Active learning on {result['corpus']}: seed set {a['seed_size']}, batch {a['batch']}, "
             f"{len(a['seeds'])} seeds, max_steps {a['max_steps']}, pool {result['pool_size']}, "
             f"test {len(result['test_ids'])} docs")
    png_ok = write_chart(summary, title, stem.with_suffix(".html"), stem.with_suffix(".png"), log)
    table = table_markdown(summary)
    stem.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    log(table)
    log(f"chart: {stem.with_suffix('.html')}" + (f" and {stem.with_suffix('.png')}" if png_ok else ""))
    return summary


def run_parallel(argv: list[str], seeds: Sequence[int], jobs: int, out_dir: Path, name: str) -> None:
    """One child process per seed (at most ``jobs`` at a time; later flags override earlier ones), then one merged
    report. Each child logs to ``<name>-s<seed>.log``."""
    import subprocess

    pending = list(seeds)
    running: list[tuple[int, Any, Any]] = []
    while pending or running:
        while pending and len(running) < jobs:
            seed = pending.pop(0)
            log = open(out_dir / f"{name}-s{seed}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
            cmd = [sys.executable, "-u", __file__, *argv, "--seeds", str(seed), "--name", f"{name}-s{seed}",
                   "--jobs", "1"]
            running.append((seed, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), log))
            print(f"seed {seed}: running, log in {out_dir / f'{name}-s{seed}.log'}", flush=True)
        seed, proc, log = running.pop(0)
        code = proc.wait()
        log.close()
        if code:
            raise SystemExit(f"seed {seed} failed (exit {code}); see {out_dir / f'{name}-s{seed}.log'}")
    files = [out_dir / f"{name}-s{seed}.json" for seed in seeds]
    report(merge([json.loads(f.read_text(encoding="utf-8")) for f in files]), out_dir, name)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", choices=["demo", "maccrobat", "ptbxl"], default="demo",
                    help="demo: core.demo export (--n tasks, ~60%% labelled); maccrobat: ../shared/data/maccrobat2020, "
                         "labels " + ", ".join(MACCROBAT_LABELS) + "; ptbxl: the 500 PTB-XL reports with the rule "
                         "extractor's entities as silver labels")
    ap.add_argument("--n", type=int, default=300, help="demo tasks to generate (300 -> 180 labelled)")
    ap.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES),
                    help="core.active registry names; random is the baseline")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--rounds", type=int, default=4, help="trained models per curve, the seed set included")
    ap.add_argument("--batch", type=int, default=4, help="documents labelled per round")
    ap.add_argument("--seed-size", type=int, default=4, help="random documents labelled before the first query")
    ap.add_argument("--test-size", type=int, default=40, help="fixed test documents (never queried)")
    ap.add_argument("--pool-limit", type=int, default=60, help="at most this many pool documents (0 = all)")
    ap.add_argument("--max-steps", type=int, default=30, help="optimizer steps per training (0 = use --epochs)")
    ap.add_argument("--epochs", type=int, default=None, help="passes per training when --max-steps is 0")
    ap.add_argument("--mc-passes", type=int, default=10, help="MC-dropout passes for bald")
    ap.add_argument("--no-full", action="store_true",
                    help="skip the full-data model (when this run is merged with one that has it)")
    ap.add_argument("--no-centres", action="store_true",
                    help="diversity without the labelled reports as initial centres (as before this session)")
    ap.add_argument("--no-dedupe", action="store_true",
                    help="let a batch hold the same text twice and re-query labelled texts (the queue never does)")
    ap.add_argument("--base-model", default="bundled")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 is fastest on a shared, loaded 2-core machine; see bench/README.md)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="seeds run as this many parallel processes (one thread each), then merged")
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--name", help="output file stem (default al-<corpus>)")
    ap.add_argument("--report", nargs="+", metavar="JSON",
                    help="only redraw the chart and table of saved runs (several files, e.g. one per seed, merge)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.report:
        report(merge([json.loads(Path(f).read_text(encoding="utf-8")) for f in args.report]), out_dir, args.name)
        return
    name = args.name or f"al-{args.corpus}"
    if args.jobs > 1 and len(args.seeds) > 1:
        run_parallel(list(sys.argv[1:] if argv is None else argv), args.seeds, args.jobs, out_dir, name)
        return

    import torch

    from core.trainconfig import TrainConfig
    from db.engine import make_engine
    from training.encoding import load_tokenizer

    torch.set_num_threads(max(1, args.threads))
    config = TrainConfig(base_model=args.base_model, max_steps=args.max_steps or None, epochs=args.epochs)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reportlens-al-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        make_project(url, args.n, 0, args.corpus)
        engine = make_engine(url)
        sim = Simulator(engine, 1, config, Path(tmp), mc_passes=args.mc_passes, dedupe=not args.no_dedupe,
                        centres=not args.no_centres,
                        log=lambda m: print(f"[{time.monotonic() - started:6.0f} s] {m}", flush=True))
        test, pool = fixed_split(list(sim.docs.values()), args.test_size, args.pool_limit or None)
        tokens = token_counts(load_tokenizer(config.base_model), list(sim.docs.values()), config)
        sim.log(f"{args.corpus}: {len(sim.docs)} labelled docs, test {len(test)}, pool {len(pool)}, "
                f"{len(sim.schema.labels)} labels")
        result = simulate(sim, args.strategies, args.seeds, args.rounds, args.batch, args.seed_size, test, pool,
                          tokens, full_data=not args.no_full)
    result |= {"corpus": args.corpus, "args": vars(args), "test_ids": test, "pool_size": len(pool),
               "duration_s": round(time.monotonic() - started, 1), "cpus": os.cpu_count(),
               "load_avg_1m": round(os.getloadavg()[0], 2), "python": platform.python_version()}
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    report(result, out_dir, name)


if __name__ == "__main__":
    main()
