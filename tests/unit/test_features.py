"""Random forest / decision tree baselines on a small corpus with a planted signal: the features that carry it rank
first (impurity and permutation), metrics per label, document labels (Choices), entity context words, clear errors,
and the service's side-by-side with a tiny BERT version on its own split."""

from __future__ import annotations

import random

import pytest

from core.features import FeatureConfig, entity_context, fit_explainer, make_samples, words
from core.types import Document, ReportLensError, Span

FILLER = ["the", "report", "was", "read", "today", "by", "staff", "image", "quality", "good", "study", "done"]


def corpus(n: int = 60, seed: int = 0) -> list[Document]:
    """Every report has a RHYTHM; FINDING (pleural effusion) in about half, told apart only by that phrase;
    HR in about 60%; document label "abnormal" exactly when there is a finding."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        text, spans = "", []

        def add(piece: str, label: str | None = None, spans: list[Span] = spans) -> None:
            nonlocal text
            text += " " if text else ""
            if label:
                spans.append(Span(len(text), len(text) + len(piece), label))
            text += piece

        add("Sinus rhythm", "RHYTHM")
        add(" ".join(rng.sample(FILLER, 4)) + ".")
        if rng.random() < 0.6:
            add("heart rate")
            add(f"{rng.randint(50, 120)} bpm", "HR")
            add(".")
        finding = rng.random() < 0.5
        if finding:
            add("there is a")
            add("pleural effusion", "FINDING")
            add(".")
        add(" ".join(rng.sample(FILLER, 3)) + ".")
        docs.append(Document(i + 1, text, tuple(spans), {"choices": ["abnormal"] if finding else ["normal"]}))
    return docs


SMALL = FeatureConfig(n_estimators=40, permutation_top=10, permutation_repeats=3, max_char_features=800)


def _fit(target: str, config: FeatureConfig = SMALL):
    docs = corpus()
    train, test = docs[:45], docs[45:]
    return fit_explainer(make_samples(train, target, config.context_words),
                         make_samples(test, target, config.context_words), target, config)


def test_presence_finds_the_planted_features_and_drops_the_constant_label():
    res = _fit("presence")
    assert res.labels == ("FINDING", "HR") and res.dropped_labels == ("RHYTHM",)
    assert any("RHYTHM" in n for n in res.notes)
    assert res.n_train == 45 and res.n_eval == 15 and res.eval_split == "test"
    assert res.forest_metrics["per_label"]["FINDING"]["f1"] == 1.0
    assert res.forest_metrics["per_label"]["HR"]["f1"] == 1.0
    assert res.forest_metrics["per_label"]["FINDING"]["support"] == sum("FINDING" in s.labels
                                                                        for s in make_samples(corpus()[45:],
                                                                                              "presence"))
    signal = "heart rate bpm there is a pleural effusion"
    top5 = [i.feature for i in res.top(5)]
    assert all(f[2:].strip() in signal for f in top5), top5  # every top feature is a piece of the planted phrases
    assert all(f.startswith(("w:", "c:")) for f in top5)
    perm = res.top(3, by="permutation")
    assert perm and perm[0].permutation_mean >= 0.0 and perm[0].permutation_std is not None
    assert [i.impurity for i in res.importances] == sorted((i.impurity for i in res.importances), reverse=True)
    assert "FINDING, HR" in res.tree_text and "|---" in res.tree_text
    assert _fit("presence").importances == res.importances  # seeded: the same every time


def test_document_labels_as_target():
    res = _fit("choices")
    assert res.labels == ("abnormal", "normal")
    assert res.forest_metrics["micro_f1"] == 1.0
    assert res.top(1)[0].feature[2:].strip() in "there is a pleural effusion"


def test_entity_type_from_its_context_words():
    text = "Sinus rhythm, heart rate 72 bpm. There is a pleural effusion."
    assert words("rate 72 bpm.") == [("rate", 0, 4), ("72", 5, 7), ("bpm", 8, 11), (".", 11, 12)]
    start = text.index("72 bpm")
    assert entity_context(text, start, start + 6, 2) == "L_heart L_rate 72 bpm R_. R_there"
    assert entity_context(text, start, start + 6, 0) == "72 bpm"
    res = _fit("entity")
    assert res.labels == ("FINDING", "HR", "RHYTHM")
    assert res.forest_metrics["micro_f1"] == 1.0 and res.forest_metrics["macro_f1"] == 1.0
    assert all(i.feature.startswith("e:") for i in res.importances)


def test_unusable_input_is_a_clear_error():
    docs = corpus(8)
    with pytest.raises(ReportLensError, match="Unknown target"):
        make_samples(docs, "sentiment")
    only_rhythm = [Document(d.id, d.text, tuple(s for s in d.spans if s.label == "RHYTHM")) for d in docs]
    with pytest.raises(ReportLensError, match="Too little"):
        fit_explainer(make_samples(only_rhythm, "presence"), make_samples(only_rhythm, "presence"), "presence")
    with pytest.raises(ReportLensError, match="Too little"):
        fit_explainer(make_samples(docs[:3], "presence"), make_samples(docs, "presence"), "presence")
    with pytest.raises(ReportLensError, match="tree_depth"):
        FeatureConfig(tree_depth=0)
    assert FeatureConfig.from_dict(SMALL.to_dict()) == SMALL


def test_too_small_for_a_split_says_the_numbers_measure_fit():
    docs = corpus(12)
    samples = make_samples(docs, "presence")
    res = fit_explainer(samples, samples, "presence", SMALL, eval_split="train")
    assert res.eval_split == "train" and any("measure fit" in n for n in res.notes)


@pytest.fixture(scope="module")
def corpus_version(tmp_path_factory):
    """The corpus above (as a Label Studio-like import, choices dropped) and a tiny BERT version trained on it."""
    from core.types import Annotation, ParsedTask
    from db.engine import dispose_engine
    from db.model_versions import record_model_version
    from tests.factories import train_tiny

    tasks = [ParsedTask(text=d.text, task_id=d.id, annotations=(Annotation(spans=d.spans, external_id=str(d.id)),))
             for d in corpus(40)]
    engine, url, result = train_tiny(tmp_path_factory.mktemp("features"), tasks, project="corpus", max_steps=3)
    yield engine, record_model_version(engine, 1, None, result)
    dispose_engine(url)


def test_service_uses_the_versions_split_and_compares_with_bert(corpus_version):
    from services.explain import available_targets, feature_report, importance_rows, load_corpus, to_csv

    engine, version = corpus_version
    docs, data_version = load_corpus(engine, 1)
    assert available_targets(docs) == ["presence", "entity"] and len(data_version) == 16
    rep = feature_report(engine, 1, "presence", version.id, SMALL)
    snap = version.data_snapshot
    assert rep.split.train == tuple(snap["train"]) and rep.split.evaluate == tuple(snap["test"])
    assert rep.split.eval_split == "test" and rep.version_name == "v1"
    models = {r["model"] for r in rep.comparison}
    assert {"random forest", "decision tree (depth 3)", "BERT v1"} <= models
    bert_presence = [r for r in rep.comparison if r["model"] == "BERT v1" and r["what"] == "presence"]
    assert {r["label"] for r in bert_presence} >= set(rep.result.labels)
    stored = [r for r in rep.comparison if r["what"].startswith("entity spans")]
    assert stored and all(0.0 <= (r["f1"] or 0.0) <= 1.0 for r in stored)
    csv_text = to_csv(importance_rows(rep.result), ("feature", "impurity", "permutation_mean", "permutation_std"))
    assert len(csv_text.splitlines()) == len(rep.result.importances) + 1


# ---------------------------------------------------------------- the demo corpus: readable features and charts


HEADER_WORDS = {"findings", "impression", "indication", "technique", "clinical", "history", "interpretation",
                "electrocardiogram", "comparison", "exam"}


def test_section_headers_and_title_lines_are_not_features():
    from core.features import strip_headers

    text = ("CHEST X-RAY, PA AND LATERAL\nINDICATION: Trauma.\nFINDINGS: There is no pleural effusion.\n"
            "IMPRESSION: No acute process.\nECG interpretation:\nSinus rhythm. Intervals: QRS 90 ms.")
    kept = strip_headers(text)
    assert [w for w, _, _ in words(kept) if w.isalpha()] == ["trauma", "there", "is", "no", "pleural", "effusion",
                                                             "no", "acute", "process", "sinus", "rhythm", "intervals",
                                                             "qrs", "ms"]
    assert strip_headers(text, None) == text
    with pytest.raises(ReportLensError, match="header_pattern"):
        FeatureConfig(header_pattern="(")
    with pytest.raises(ReportLensError, match="max_df"):
        FeatureConfig(max_df=0.0)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The demo project (core.demo's synthetic export, imported like a user's) and its presence report."""
    from db.engine import dispose_engine, make_engine
    from db.migrate import upgrade
    from services.explain import feature_report
    from services.imports import seed_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('demo-features') / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    seed_demo(engine, n=200)
    yield feature_report(engine, 1, "presence", config=FeatureConfig(n_estimators=60))
    dispose_engine(url)


def test_demo_importances_point_to_findings_not_section_headers(demo_report):
    res = demo_report.result
    top = [i.feature for i in res.top(15)]
    assert all(f.startswith("w:") for f in top), top  # words, not character n-grams such as "c:gs: "
    assert not {w for f in top for w in f[2:].split()} & HEADER_WORDS, top
    assert not any(ch.isdigit() for f in top for ch in f), top  # no report-specific numbers
    # the words that carry the labels: ECG measurements and chest findings
    assert {"w:qrs", "w:qtc", "w:ms"} & set(top) and {"w:effusion", "w:pleural", "w:pulmonary", "w:nodule",
                                                        "w:lungs", "w:pneumothorax"} & set(top), top


def test_demo_tree_names_its_classes_and_counts_its_samples(demo_report):
    res = demo_report.result
    text = res.tree_text
    assert "class:" not in text  # export_text's "class: 0" / "class: 2" named no label
    leaves = [line.split("=> ", 1)[1] for line in text.splitlines() if "=> " in line]
    assert leaves and all(" training report" in leaf for leaf in leaves), text
    for leaf in leaves:
        n = int(leaf.split(" ", 1)[0])
        for lab in res.labels:
            assert f"{lab} present" in leaf or f"{lab} absent" in leaf, leaf
            have = int(leaf.split(f"{lab} ", 1)[1].split(" ", 2)[1].split("/")[0])
            assert 0 <= have <= n and f"/{n}" in leaf
    assert sum(int(leaf.split(" ", 1)[0]) for leaf in leaves) == res.n_train  # every training report in one leaf
    assert "report contains \"" in text and "report lacks \"" in text


def test_demo_permutation_is_either_informative_or_explained(demo_report):
    res = demo_report.result
    perm = res.top(20, by="permutation")
    moved = any((i.permutation_mean or 0.0) != 0.0 or (i.permutation_std or 0.0) != 0.0 for i in perm)
    assert perm and moved != bool(res.permutation_note), res.permutation_note
    if res.permutation_note:
        assert "zero" in res.permutation_note and f"{res.n_eval} {res.eval_split}" in res.permutation_note


def test_entity_tree_leaves_name_the_entity_type():
    res = _fit("entity")
    leaves = [line.split("=> ", 1)[1] for line in res.tree_text.splitlines() if "=> " in line]
    assert leaves and all(leaf.split(" (", 1)[0] in res.labels for leaf in leaves), res.tree_text
    assert all("training entit" in leaf for leaf in leaves) and "class:" not in res.tree_text


def test_demo_feature_groups_show_what_single_words_cannot(demo_report):
    res = demo_report.result
    assert res.groups and sum(len(g.features) for g in res.groups) == len(res.top(25, by="permutation"))
    top = res.groups[0]
    assert top.permutation_mean > 0, res.groups  # shuffled together, the redundant words matter
    assert len(top.features) > 1 and top.name.startswith(f'"{top.features[0][2:]}"')
    if res.permutation_note:  # the note points to the groups, not only to impurity
        assert "feature groups below" in res.permutation_note
