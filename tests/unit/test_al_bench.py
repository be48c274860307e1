"""bench/active_learning.py: the simulation loop on the tiny random BERT (2 rounds), its bookkeeping and summary."""

from __future__ import annotations

import pytest

from bench.active_learning import Simulator, fixed_split, labels_to_reach, simulate, summarise, token_counts
from core.trainconfig import TrainConfig
from core.types import ReportLensError
from db.engine import make_engine
from db.importer import import_tasks
from tests.factories import tiny_tasks
from tests.tiny import tiny_model_dir, tiny_tokenizer

STRATEGIES = ["random", "margin", "mnlp", "diversity"]


@pytest.fixture
def sim(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks(n=30))
    config = TrainConfig(base_model=str(tiny_model_dir(tmp_path / "base")), max_steps=2, batch_size=4, max_length=32,
                         stride=8, learning_rate=5e-3)
    return Simulator(engine, 1, config, tmp_path / "models", log=lambda _m: None)


def test_two_rounds_bookkeeping(sim):
    docs = list(sim.docs.values())
    test, pool = fixed_split(docs, test_size=8, pool_limit=16)
    assert len(test) == 8 and len(pool) == 16 and not set(test) & set(pool)
    assert fixed_split(docs, 8, 16) == (test, pool)  # fixed: no seed involved
    tokens = token_counts(tiny_tokenizer(), docs, sim.config)
    result = simulate(sim, STRATEGIES, seeds=[0, 1], rounds=2, batch=3, seed_size=4, test=test, pool=pool,
                      tokens=tokens)

    runs = result["runs"]
    assert sorted((r["strategy"], r["seed"]) for r in runs) == sorted((s, k) for s in STRATEGIES for k in (0, 1))
    for run in runs:
        points = run["points"]
        assert [p["round"] for p in points] == [0, 1]  # one point per round
        assert [p["docs"] for p in points] == [4, 7]  # the seed set, then + batch
        queried = [i for p in points for i in p["queried"]]
        labelled = run["seed_set"] + queried
        assert len(labelled) == len(set(labelled)) == 7  # nothing queried twice, nor a seed document
        assert set(labelled) <= set(pool) and not set(labelled) & set(test)  # the test split is never queried
        assert [p["tokens"] for p in points] == [sum(tokens[i] for i in run["seed_set"]),
                                                 sum(tokens[i] for i in labelled)]
        assert all(0.0 <= p["f1"] <= 1.0 for p in points)
    by_seed = {}
    for run in runs:  # round 0 is shared: same seed set and the same model for every strategy of a seed
        by_seed.setdefault(run["seed"], set()).add((tuple(run["seed_set"]), run["points"][0]["f1"]))
    assert all(len(v) == 1 for v in by_seed.values())
    assert [f["seed"] for f in result["full"]] == [0, 1] and all(f["docs"] == 16 for f in result["full"])

    summary = summarise(result)
    assert set(summary["curves"]) == set(STRATEGIES)
    assert all(len(c) == 2 for c in summary["curves"].values())
    assert summary["best"] in set(STRATEGIES) - {"random"}
    assert summary["target_f1"] == pytest.approx(0.95 * summary["full_f1"])


def test_pool_too_small_and_unknown_strategy_are_clear_errors(sim):
    test, pool = fixed_split(list(sim.docs.values()), test_size=8, pool_limit=10)
    with pytest.raises(ReportLensError, match="need 13 pool documents"):
        simulate(sim, ["random"], [0], rounds=4, batch=3, seed_size=4, test=test, pool=pool, tokens={})
    with pytest.raises(ReportLensError, match="Unknown query strategy"):
        simulate(sim, ["nope"], [0], rounds=2, batch=3, seed_size=4, test=test, pool=pool, tokens={})
    assert sim.n_models == 0  # nothing trained before the checks


def test_labels_to_reach():
    curve = [{"docs": 4, "tokens": 40, "f1": 0.5}, {"docs": 8, "tokens": 90, "f1": 0.9}]
    assert labels_to_reach(curve, 0.85) == (8, 90)
    assert labels_to_reach(curve, 0.95) == (None, None)


def _result(seed: int, f1s: dict[str, list[float]]) -> dict:
    runs = [{"strategy": s, "seed": seed, "seed_set": [1, 2],
             "points": [{"round": r, "docs": 2 + 2 * r, "tokens": 20 * (r + 1), "f1": f, "queried": []}
                        for r, f in enumerate(v)]} for s, v in f1s.items()]
    return {"corpus": "demo", "test_ids": [9, 10], "pool_size": 8, "runs": runs,
            "full": [{"seed": seed, "docs": 8, "tokens": 80, "f1": 0.8}], "duration_s": 1.0,
            "args": {"seeds": [seed], "seed_size": 2, "batch": 2, "max_steps": 3}}


def test_merge_and_report_write_chart_and_table(tmp_path):
    from bench.active_learning import merge, report

    a = _result(0, {"random": [0.2, 0.5, 0.7, 0.78], "margin": [0.2, 0.78, 0.8, 0.8]})
    b = _result(1, {"random": [0.3, 0.5, 0.72, 0.8], "margin": [0.3, 0.76, 0.8, 0.81]})
    merged = merge([a, b])
    assert merged["args"]["seeds"] == [0, 1] and len(merged["runs"]) == 4
    lines: list[str] = []
    summary = report(merged, tmp_path, "al-x", log=lines.append)
    # target 0.76: margin's mean curve reaches it at 4 docs, random's at 8 -> half the documents: target met
    rows = {r["strategy"]: r for r in summary["rows"]}
    assert rows["margin"]["docs_to_target"] == 4 and rows["random"]["docs_to_target"] == 8
    assert summary["best"] == "margin" and summary["target_met"] is True
    assert (tmp_path / "al-x.html").stat().st_size > 10_000 and (tmp_path / "al-x.md").is_file()
    assert (tmp_path / "al-x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| margin | 4 |" in (tmp_path / "al-x.md").read_text()


def test_ptbxl_corpus_keeps_duplicates_and_takes_the_rules_as_silver_labels(tmp_path):
    """The PTB-XL pool: all 500 reports (duplicates kept apart by ecg_id), each labelled with exactly the rule
    extractor's entities, every span matching its text."""
    from bench.train_bench import make_project
    from core.rules.ecg import extract_ecg
    from db.repository import training_documents

    url = f"sqlite:///{tmp_path / 'ptbxl.db'}"
    make_project(url, 0, 0, "ptbxl")
    docs = list(training_documents(make_engine(url), 1))
    assert len(docs) == 500 and len({d.text for d in docs}) < 300  # 243 distinct texts in the sample
    assert sum(d.text == "sinusrhythmus normales ekg" for d in docs) > 100
    for d in docs[:80]:
        assert sorted((s.start, s.end, s.label) for s in d.spans) == sorted(
            {(e.start, e.end, e.label) for e in extract_ecg(d.text)})
    labels = {s.label for d in docs for s in d.spans}
    assert {"RHYTHM", "FINDING", "AXIS"} <= labels


def test_arm_names_mark_runs_without_the_queue_behaviour():
    from bench.active_learning import arm_name

    assert arm_name({"strategy": "diversity", "centres": True, "dedupe": True}) == "diversity"
    assert arm_name({"strategy": "diversity_mnlp"}) == "diversity_mnlp_nocentres"  # saved before centres existed
    assert arm_name({"strategy": "mnlp", "centres": True, "dedupe": False}) == "mnlp_nodedupe"
    assert arm_name({"strategy": "random", "dedupe": True}) == "random"  # the baseline never goes through the queue
    assert arm_name({"strategy": "random_distinct", "dedupe": True}) == "random_distinct"


def test_a_longer_random_run_with_another_batch_extends_the_curve():
    from bench.active_learning import mean_curves

    short = _result(0, {"random": [0.2, 0.5, 0.7]})["runs"]  # 2, 4, 6 docs
    long = [{"strategy": "random", "seed": 0, "points": [{"round": r, "docs": 2 + 4 * r, "tokens": 1, "f1": f}
                                                          for r, f in enumerate([0.2, 0.9, 0.95])]}]  # 2, 6, 10
    (curve,) = mean_curves(short + long).values()
    assert [p["docs"] for p in curve] == [2, 4, 6, 10]
    assert [p["seeds"] for p in curve] == [2, 1, 2, 1]
    assert curve[2]["f1"] == pytest.approx(0.8)  # 0.7 and 0.9 at 6 documents


def test_mean_f1_compares_arms_over_the_sizes_all_of_them_reached():
    """A random curve run further (higher F1 at sizes the others never reached) must not win the area comparison."""
    from bench.active_learning import summarise

    result = _result(0, {"random": [0.2, 0.4, 0.5], "margin": [0.2, 0.6, 0.7]})  # 2, 4, 6 docs
    result["runs"].append({"strategy": "random", "seed": 1, "points": [
        {"round": r, "docs": d, "tokens": 1, "f1": f} for r, (d, f) in enumerate([(2, 0.2), (10, 0.99), (14, 0.99)])]})
    rows = {r["strategy"]: r for r in summarise(result)["rows"]}
    assert rows["random"]["mean_f1_over_rounds"] == pytest.approx((0.2 + 0.4 + 0.5) / 3)  # 2, 4, 6 docs only
    assert rows["margin"]["mean_f1_over_rounds"] == pytest.approx((0.2 + 0.6 + 0.7) / 3)


def test_query_computes_what_the_strategy_needs_and_ranks_like_the_queue(sim):
    """An arm's forward pass computes MC passes / embeddings / labelled centres only where its strategy needs them,
    and its batch is select_batch over that pool with the queue's duplicate keys (the Queue's ranking)."""
    from dataclasses import replace

    from core.active import get_strategy, select_batch

    test, pool = fixed_split(list(sim.docs.values()), test_size=8, pool_limit=16)
    labelled, rest = pool[:4], pool[4:]
    _, model_dir, _ = sim.train(labelled, test, 0)
    for name in ("margin", "bald", "diversity"):
        s = get_strategy(name, passes=sim.mc_passes)
        scored = sim.score(model_dir, rest, s, labelled)
        assert scored.probs is not None and scored.size == len(rest)
        assert (scored.passes is not None) == s.needs_passes and (scored.embeddings is not None) == s.needs_embeddings
        assert (scored.labelled is not None) == s.needs_embeddings
        picks, _ = sim.query(name, model_dir, rest, 3, seed=0, labelled=labelled)
        queue = replace(scored, keys=[sim.keys[i] for i in rest], known={sim.keys[i] for i in labelled})
        assert picks == [rest[i] for i in select_batch(s, queue, 3)], name
