"""Interpretable baselines beside the BERT model: a random forest and one small decision tree on TF-IDF features.

Targets (what the simple models predict):

* ``"choices"``: the project's document labels (Label Studio ``Choices``), multi-label;
* ``"presence"``: for each entity type, whether the report contains at least one such entity, multi-label;
* ``"entity"``: the type of each annotated entity from its own words and the words around it (``context_words``
  on each side, marked ``L_`` / ``R_``): which context makes an entity a heart rate and not an interval.

Features: TF-IDF of words and word n-grams of the report (``"choices"``, ``"presence"``), or of the entity's words and
its context words (``"entity"``). Feature names are prefixed ``w:`` (word), ``c:`` (character n-gram, off unless
``char_ngrams``) or ``e:`` (entity context) so a reader knows what a bar means. Report structure is not a finding:
section headers and title lines (``FINDINGS:``, ``IMPRESSION:``, ``ECG interpretation:``, ``CHEST X-RAY, PA AND
LATERAL``; ``header_pattern``) are removed before the words are counted, function words (``STOP_WORDS``, negations
kept) are skipped and words in more than ``max_df`` of the training reports are dropped; otherwise the headers,
which tell an ECG from a chest report, would rank above the findings (the demo's ``ANATOMY`` only occurs in chest
reports, so "IMPRESSION" predicted it best).

The decision tree is fitted on word *presence* (0/1), so its splits read "contains 'bpm'"; its text
(:func:`core.feature_tree.tree_text`) names the classes ("FINDING present") and counts the training
samples in each leaf.

Importances: impurity (mean decrease in Gini over the forest, computed on the training documents, so it favours
features with many split points) and permutation (the drop in micro F1 on the evaluation documents when one
feature's column is shuffled, ``permutation_repeats`` times; computed for the ``permutation_top`` features with the
highest impurity importance, since shuffling thousands of sparse columns one by one is slow and tells little more).
A forest spreads a signal over many redundant words ("heart", "rate", "bpm"), so shuffling one of them often changes
no prediction: then every drop is zero and :attr:`FeatureResult.permutation_note` says why instead of a flat chart.
So the same features are also clustered by the Spearman correlation of their columns on the training documents and
each group shuffled together (:mod:`core.feature_groups`, ``group_correlation``): :attr:`FeatureResult.groups`,
named by their top words. Both use :func:`sklearn.inspection.permutation_importance` (micro F1).

Metrics are computed on the same fixed split as the BERT model version (see :mod:`core.split`), so the two can be
read side by side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from core.feature_groups import GroupImportance, block_drops, grouped_importance
from core.feature_tree import tree_text
from core.types import Document, ReportLensError

Target = Literal["choices", "presence", "entity"]
TARGETS: tuple[str, ...] = ("choices", "presence", "entity")
WORD_RE = re.compile(r"\w+(?:[./]\w+)*|[^\w\s]", re.UNICODE)
# a line that starts with an upper-case section label ("FINDINGS:", "CLINICAL HISTORY:"), a line that is only a label
# ("ECG interpretation:"), or a title line without lower-case letters or a full stop ("CHEST X-RAY, PA AND LATERAL")
HEADER_PATTERN = (r"(?m)^[^\S\n]*(?:[A-Z][A-Z0-9 /&(),-]*:|[^\n:]{1,40}:[^\S\n]*$|"
                  r"(?=[^a-z\n]*[A-Z][^a-z\n]*[A-Z])[^a-z.\n]+$)")
# words start with a letter ("qtc", "x"); numbers ("418", the "2" of "2.5 cm") vary from report to report
WORD_TOKEN = r"(?u)\b[^\W\d]\w*\b"
# function words that carry no finding; negations ("no", "not", "without") are kept: they are findings' context
STOP_WORDS = frozenset(
    "a an the and or of in on at to for from by with as is are was were be been being this that these those it its "
    "there their which who whom than then also".split())


@dataclass(frozen=True)
class FeatureConfig:
    """How features are built and the models fitted; validated, round-trips through ``to_dict``/``from_dict``."""

    word_ngram_max: int = 2
    char_ngrams: bool = False
    char_ngram_min: int = 3
    char_ngram_max: int = 5
    max_word_features: int = 3000
    max_char_features: int = 3000
    context_words: int = 3
    header_pattern: str | None = HEADER_PATTERN  # None keeps the headers
    max_df: float = 0.9  # words in more than this share of the training reports are dropped (from 20 reports on)
    n_estimators: int = 150
    tree_depth: int = 3
    permutation_top: int = 25
    permutation_repeats: int = 10
    group_correlation: float = 0.5  # features correlated at least this much (|Spearman|, average) are shuffled together
    random_state: int = 0

    def __post_init__(self) -> None:
        for name in ("word_ngram_max", "char_ngram_min", "max_word_features", "max_char_features", "n_estimators",
                     "tree_depth", "permutation_top", "permutation_repeats"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ReportLensError(f"FeatureConfig.{name} must be a positive integer; got {value!r}.")
        if self.char_ngram_max < self.char_ngram_min:
            raise ReportLensError(f"char_ngram_max ({self.char_ngram_max}) must be >= char_ngram_min "
                                  f"({self.char_ngram_min}).")
        if not isinstance(self.context_words, int) or self.context_words < 0:
            raise ReportLensError(f"context_words must be an integer >= 0; got {self.context_words!r}.")
        if not isinstance(self.group_correlation, (int, float)) or not 0.0 < self.group_correlation <= 1.0:
            raise ReportLensError(f"FeatureConfig.group_correlation must be in (0, 1]; got {self.group_correlation!r}.")
        if not isinstance(self.max_df, (int, float)) or not 0.0 < self.max_df <= 1.0:
            raise ReportLensError(f"FeatureConfig.max_df must be a share in (0, 1]; got {self.max_df!r}.")
        if self.header_pattern is not None:
            try:
                re.compile(self.header_pattern)
            except re.error as exc:
                raise ReportLensError(f"FeatureConfig.header_pattern {self.header_pattern!r} is not a regular "
                                      f"expression ({exc}); fix it or pass None to keep the headers.") from exc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Sample:
    """One unit the simple models see: a report (document targets) or an entity with its context."""

    doc_id: Any
    text: str
    labels: tuple[str, ...]


def words(text: str) -> list[tuple[str, int, int]]:
    """Lower-cased words and punctuation marks with their character offsets."""
    return [(m.group(0).lower(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


def strip_headers(text: str, pattern: str | None = HEADER_PATTERN) -> str:
    """``text`` without its section headers and title lines (``pattern``, e.g. :data:`HEADER_PATTERN`); the rest of
    each line stays ("FINDINGS: There is a nodule." -> " There is a nodule.")."""
    return text if not pattern else re.sub(pattern, " ", text)


def entity_context(text: str, start: int, end: int, context_words: int) -> str:
    """The entity's words and ``context_words`` words on each side as one feature string (``L_``/``R_`` marked)."""
    toks = words(text)
    inside = [w for w, a, b in toks if a < end and start < b]
    left = [w for w, _a, b in toks if b <= start][-context_words:] if context_words else []
    right = [w for w, a, _b in toks if a >= end][:context_words] if context_words else []
    return " ".join([*(f"L_{w}" for w in left), *inside, *(f"R_{w}" for w in right)])


def make_samples(docs: Sequence[Document], target: str, context_words: int = 3) -> list[Sample]:
    """Samples for ``target`` from training-view documents (``meta['choices']`` holds the document labels)."""
    if target not in TARGETS:
        raise ReportLensError(f"Unknown target {target!r}; use one of {', '.join(TARGETS)}.")
    if target == "choices":
        return [Sample(d.id, d.text, tuple(sorted(set(d.meta.get("choices") or ())))) for d in docs]
    if target == "presence":
        return [Sample(d.id, d.text, tuple(sorted({s.label for s in d.spans}))) for d in docs]
    return [Sample(d.id, entity_context(d.text, s.start, s.end, context_words), (s.label,))
            for d in docs for s in d.spans]


@dataclass(frozen=True)
class Importance:
    feature: str
    impurity: float
    permutation_mean: float | None = None
    permutation_std: float | None = None


@dataclass(frozen=True)
class FeatureResult:
    """What the page shows and the CSV downloads hold. Metrics: ``{"micro_f1", "macro_f1", "per_label": {label:
    {"precision", "recall", "f1", "support"}}}``, computed on ``eval_split`` documents."""

    target: str
    labels: tuple[str, ...]
    n_features: int
    n_train: int
    n_eval: int
    eval_split: str  # "test", "dev", or "train" (then the numbers measure fit only)
    importances: tuple[Importance, ...]  # by impurity, highest first (all features with impurity > 0)
    forest_metrics: dict[str, Any]
    tree_metrics: dict[str, Any]
    tree_text: str
    dropped_labels: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    permutation_note: str = ""  # why there is no permutation chart (every drop zero, too few samples), else ""
    groups: tuple[GroupImportance, ...] = ()  # correlated features shuffled together, highest drop first

    def top(self, n: int = 20, by: str = "impurity") -> list[Importance]:
        if by == "impurity":
            return list(self.importances[:n])
        if by != "permutation":
            raise ReportLensError(f"Rank by 'impurity' or 'permutation', not {by!r}.")
        scored = [i for i in self.importances if i.permutation_mean is not None]
        return sorted(scored, key=lambda i: -(i.permutation_mean or 0.0))[:n]


def _vectorizers(target: str, config: FeatureConfig, n_docs: int) -> list[tuple[str, Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if target == "entity":
        return [("e:", TfidfVectorizer(analyzer=str.split, lowercase=False, min_df=1,
                                       max_features=config.max_word_features))]
    min_df, max_df = (2, config.max_df) if n_docs >= 20 else (1, 1.0)
    pattern = config.header_pattern

    def clean(text: str) -> str:
        return strip_headers(text, pattern).lower()

    out = [("w:", TfidfVectorizer(analyzer="word", ngram_range=(1, config.word_ngram_max), min_df=min_df, max_df=max_df,
                                  max_features=config.max_word_features, token_pattern=WORD_TOKEN,
                                  preprocessor=clean, stop_words=sorted(STOP_WORDS), sublinear_tf=True))]
    if config.char_ngrams:
        out.append(("c:", TfidfVectorizer(analyzer="char_wb", preprocessor=clean, min_df=min_df, max_df=max_df,
                                          ngram_range=(config.char_ngram_min, config.char_ngram_max),
                                          max_features=config.max_char_features, sublinear_tf=True)))
    return out


def _label_matrix(samples: Sequence[Sample], labels: Sequence[str], multi: bool) -> np.ndarray:
    if multi:
        return np.array([[lab in s.labels for lab in labels] for s in samples], dtype=np.int64).reshape(-1, len(labels))
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([index[s.labels[0]] for s in samples], dtype=np.int64)


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-label precision/recall/F1 and micro/macro F1; ``y`` is a 0/1 matrix (multi-label) or class ids."""
    from sklearn.metrics import precision_recall_fscore_support

    if y_true.ndim == 2:
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0,
                                                     labels=list(range(len(labels))))
        micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)[2]
    else:
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(range(len(labels))),
                                                     average=None, zero_division=0)
        micro = float((y_true == y_pred).mean()) if len(y_true) else 0.0
    per = {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
           for i, lab in enumerate(labels)}
    present = [i for i in range(len(labels)) if s[i] > 0]
    macro = float(np.mean([f[i] for i in present])) if present else 0.0
    return {"micro_f1": float(micro), "macro_f1": macro, "per_label": per, "n": int(len(y_true))}


def predict_like(model: Any, x: Any, y: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` as integers shaped like ``y`` (scikit-learn returns one label's 0/1 matrix as 1-D)."""
    pred = np.asarray(model.predict(x)).astype(np.int64)
    return pred.reshape(len(pred), -1) if y.ndim == 2 else pred


def _micro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if y_true.ndim == 1:
        return float((y_true == y_pred).mean()) if len(y_true) else 0.0
    tp = float((y_true & y_pred).sum())
    denom = float(y_true.sum() + y_pred.sum())
    return 2 * tp / denom if denom else 0.0


def fit_explainer(train: Sequence[Sample], evaluate: Sequence[Sample], target: str,
                  config: FeatureConfig | None = None, eval_split: str = "test") -> FeatureResult:
    """Fit TF-IDF features, a random forest and one decision tree on ``train``; score and permute on ``evaluate``
    (pass the training samples again, with ``eval_split="train"``, when a project is too small for a split)."""
    from scipy import sparse
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    config = config or FeatureConfig()
    if target not in TARGETS:
        raise ReportLensError(f"Unknown target {target!r}; use one of {', '.join(TARGETS)}.")
    multi = target != "entity"
    notes: list[str] = []
    counts: dict[str, int] = {}
    for s in train:
        for lab in s.labels:
            counts[lab] = counts.get(lab, 0) + 1
    if multi:
        labels = tuple(sorted(lab for lab, n in counts.items() if 0 < n < len(train)))
        dropped = tuple(sorted(lab for lab, n in counts.items() if n == len(train)))
        if dropped:
            notes.append(f"Left out {', '.join(dropped)}: every training report has it, so there is nothing to "
                         "predict.")
    else:
        labels = tuple(sorted(counts))
        dropped = ()
    what = {"choices": "document labels (Choices)", "presence": "entity types", "entity": "entity types"}[target]
    if len(train) < 4 or (multi and not labels) or (not multi and len(labels) < 2):
        raise ReportLensError(
            f"Too little to fit a {target!r} model: {len(train)} training samples with {len(labels)} usable "
            f"{what}. Label more reports (at least a handful per label), or pick another target.")
    if not evaluate:
        raise ReportLensError("No evaluation samples; pass the training samples with eval_split='train'.")
    if eval_split == "train":
        notes.append("The project is too small for a held-out split: the metrics are on the training samples and "
                     "measure fit, not accuracy on new reports.")
    if not multi:
        unknown = sorted({s.labels[0] for s in evaluate} - set(labels))
        if unknown:
            notes.append(f"{len(unknown)} label(s) appear only in the evaluation split and are left out: "
                         f"{', '.join(unknown)}.")
            evaluate = [s for s in evaluate if s.labels[0] in labels]
            if not evaluate:
                raise ReportLensError("No evaluation entity has a label seen in training; label more reports.")

    blocks_train, blocks_eval, names = [], [], []
    for prefix, vec in _vectorizers(target, config, len(train)):
        try:
            blocks_train.append(vec.fit_transform([s.text for s in train]))
        except ValueError as exc:  # empty vocabulary
            raise ReportLensError(f"No {prefix[:-1]} features could be built ({exc}); the texts are empty or too "
                                  "short.") from exc
        blocks_eval.append(vec.transform([s.text for s in evaluate]))
        names.extend(prefix + n for n in vec.get_feature_names_out())
    x_train = sparse.hstack(blocks_train).tocsr().astype(np.float32)
    x_eval = sparse.hstack(blocks_eval).tocsr().astype(np.float32)
    y_train = _label_matrix(train, labels, multi)
    y_eval = _label_matrix(evaluate, labels, multi)

    forest = RandomForestClassifier(n_estimators=config.n_estimators, random_state=config.random_state, n_jobs=1,
                                    class_weight="balanced" if not multi else None)
    fit_y = y_train.ravel() if y_train.ndim == 2 and y_train.shape[1] == 1 else y_train  # one label: 1-D for sklearn
    forest.fit(x_train, fit_y)
    tree = DecisionTreeClassifier(max_depth=config.tree_depth, random_state=config.random_state)
    tree.fit(_present(x_train), fit_y)  # on word presence: splits read "contains 'bpm'"
    pred_forest = predict_like(forest, x_eval, y_eval)
    pred_tree = predict_like(tree, _present(x_eval), y_eval)
    forest_metrics = scores(y_eval, pred_forest, labels)
    tree_metrics = scores(y_eval, pred_tree, labels)

    impurity = forest.feature_importances_
    order = [int(i) for i in np.argsort(-impurity, kind="stable") if impurity[i] > 0]
    tried = order[: config.permutation_top]
    groups = grouped_importance(forest, x_train, x_eval, y_eval, names, tried, config.group_correlation,
                                config.permutation_repeats, config.random_state, _micro) if x_eval.shape[0] >= 2 else ()
    moved = any(abs(g.permutation_mean) > 1e-12 for g in groups)
    perm, perm_note = _permutation(forest, x_eval, y_eval, tried, config, eval_split, moved)
    importances = tuple(Importance(names[i], float(impurity[i]), *perm.get(i, (None, None))) for i in order)
    text = tree_text(tree, names, labels, multi, "entity" if not multi else "report")
    return FeatureResult(target, labels, len(names), len(train), len(evaluate), eval_split, importances,
                         forest_metrics, tree_metrics, text, dropped, tuple(notes), config.to_dict(), perm_note,
                         groups)


def _present(x: Any) -> Any:
    out = x.copy()
    out.data = (out.data > 0).astype(np.float32)
    return out


def _permutation(model: Any, x_eval: Any, y_eval: np.ndarray, columns: Sequence[int], config: FeatureConfig,
                 eval_split: str = "test", groups_moved: bool = False) -> tuple[dict[int, tuple[float, float]], str]:
    """Mean and std of the micro-F1 drop when each column in ``columns`` is shuffled among the eval rows, and a
    sentence saying why there is nothing to chart when no shuffle changed the score (else "")."""
    n = x_eval.shape[0]
    if not columns or n < 2:
        return {}, (f"No permutation importance: {n} {eval_split} sample(s) are too few to shuffle a feature among."
                    if columns else "")
    drops = block_drops(model, x_eval, y_eval, [[c] for c in columns], config.permutation_repeats,
                        config.random_state, _micro)
    out = {col: d for col, d in zip(columns, drops, strict=True)}
    if any(abs(m) > 1e-12 or s > 1e-12 for m, s in out.values()):
        return out, ""
    pred = predict_like(model, x_eval, y_eval)
    base = _micro(y_eval, pred)
    if len({tuple(np.atleast_1d(p)) for p in pred}) == 1:
        why = "the forest predicts the same answer for every one of them, so shuffling changes nothing"
    else:
        why = ("no single feature changes any prediction: the forest spreads each signal over many redundant words "
               "(e.g. \"heart\", \"rate\" and \"bpm\" together), so a shuffled one is covered by the others")
    after = ("The chart of feature groups below shuffles correlated words together." if groups_moved else
             "The impurity chart ranks what the forest uses.")
    return out, (f"Permutation importance is zero for each of the {len(columns)} features tried alone "
                 f"({config.permutation_repeats} shuffles each, micro F1 {base:.3f} on {n} {eval_split} samples): "
                 f"{why}. {after}")


def presence_from_spans(doc_spans: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """0/1 matrix (documents x labels): does each document have at least one span of each label."""
    return np.array([[lab in set(spans) for lab in labels] for spans in doc_spans],
                    dtype=np.int64).reshape(-1, len(labels))
