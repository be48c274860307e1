"""core.feature_groups: correlated features shuffled together. With an informative word and its duplicates, a forest
spreads its votes over the copies, so shuffling one copy changes no prediction (plain permutation importance ~0),
while shuffling the group of copies together shows the signal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.ensemble import RandomForestClassifier

from core.feature_groups import block_drops, correlated_groups, group_name, grouped_importance
from core.features import FeatureConfig, fit_explainer, make_samples
from core.types import Document, ReportLensError, Span

NAMES = ["w:heart", "w:rate", "w:bpm", "w:noise1", "w:noise2", "w:noise3", "w:noise4"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_duplicated_informative_word_is_zero_alone_and_clear_as_a_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    signal = rng.integers(0, 2, 120)
    x = np.column_stack([signal] * 3 + [rng.integers(0, 2, (120, 4))]).astype(np.float32)  # a word and 2 copies
    x_train, x_eval, y_train, y_eval = x[:80], x[80:], signal[:80], signal[80:]
    forest = RandomForestClassifier(n_estimators=40, random_state=seed).fit(x_train, y_train)

    alone = block_drops(forest, x_eval, y_eval, [[0], [1], [2]], repeats=5, seed=0)
    assert all(mean < 0.05 for mean, _ in alone), alone  # each copy covered by the other two
    groups = grouped_importance(forest, sparse.csr_matrix(x_train), sparse.csr_matrix(x_eval), y_eval, NAMES,
                                list(range(7)), min_correlation=0.5, repeats=5, seed=0)
    top = groups[0]
    assert top.features == ("w:heart", "w:rate", "w:bpm") and top.name == '"heart" + "rate" + "bpm"'
    assert top.permutation_mean > 0.3  # the signal: about half the evaluation rows flip
    assert all(len(g.features) == 1 for g in groups[1:])
    assert all(g.permutation_mean < 0.05 for g in groups[1:])  # noise stays noise


def test_groups_follow_correlation_and_survive_constant_columns() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
    x = np.column_stack([a, b, a, np.zeros(60), 1 - b]).astype(np.float32)  # 1 - b: anti-correlated, redundant
    assert correlated_groups(x, [0, 1, 2, 3, 4], 0.5) == [[0, 2], [1, 4], [3]]
    assert correlated_groups(x, [0, 2], 0.5) == [[0, 2]]  # two columns: spearmanr returns one number
    assert correlated_groups(x, [1], 0.5) == [[1]]


def test_group_names_name_the_top_words_and_count_the_rest() -> None:
    assert group_name(["w:qtc", "w:ms", "e:L_qrs", "w:qt", "w:pr"]) == '"qtc" + "ms" + "L_qrs" + 2 more'
    assert group_name(["w:effusion"]) == '"effusion"'


def test_fit_explainer_reports_groups_and_validates_the_threshold() -> None:
    rng = np.random.default_rng(0)
    docs = []
    for i in range(60):  # FINDING exactly when "pleural effusion" is written, together with "small" and "left"
        finding = bool(rng.integers(0, 2))
        text = "Sinus rhythm. " + ("Small left pleural effusion. " if finding else "Lungs clear. ") + \
            " ".join(rng.choice(["study", "done", "image", "good", "today"], 3)) + "."
        start = text.find("pleural")
        spans = (Span(0, 12, "RHYTHM"),) + ((Span(start, start + 16, "FINDING"),) if finding else ())
        docs.append(Document(i + 1, text, spans, {}))
    config = FeatureConfig(n_estimators=40, permutation_top=10, permutation_repeats=3)
    res = fit_explainer(make_samples(docs[:45], "presence"), make_samples(docs[45:], "presence"), "presence", config)
    assert res.labels == ("FINDING",)
    assert res.groups and sum(len(g.features) for g in res.groups) == len(res.top(10, by="permutation"))
    assert [g.permutation_mean for g in res.groups] == sorted((g.permutation_mean for g in res.groups), reverse=True)
    assert res.groups[0].permutation_mean > 0
    with pytest.raises(ReportLensError, match="group_correlation"):
        FeatureConfig(group_correlation=0)
