"""Permutation importance for groups of correlated features, as scikit-learn's guide recommends for multicollinear
features ("Permutation Importance with Multicollinear or Correlated Features").

A random forest on words spreads one signal over redundant words ("heart", "rate", "bpm"): shuffling one of them
changes no prediction, because the others still carry it, so every single-feature drop is zero. Here the candidate
features are clustered by the Spearman rank correlation of their columns on the training samples (distance
``1 - |rho|``, average linkage, :mod:`scipy.cluster.hierarchy`), and each cluster is shuffled *together*: the same
permutation of the evaluation rows for all its columns, so the words that stand in for each other are gone at once.

The drops are computed by :func:`sklearn.inspection.permutation_importance` on a stand-in input with one column per
block of features, holding the row each block's values are taken from (:class:`_BlockRows`): shuffling that column is
shuffling the block. Single-feature importance is the same call with one feature per block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

NAME_WORDS = 3  # words named in a group's label; the rest counted ("+ 4 more")


@dataclass(frozen=True)
class GroupImportance:
    """One group of correlated features: ``name`` its top words, ``features`` all of them (highest impurity first),
    and the mean / std drop in micro F1 when the group is shuffled together."""

    name: str
    features: tuple[str, ...]
    permutation_mean: float
    permutation_std: float


def correlated_groups(x_train: Any, columns: Sequence[int], min_correlation: float) -> list[list[int]]:
    """``columns`` (indices into ``x_train``, a samples x features matrix) clustered by Spearman correlation on the
    training samples: groups whose members correlate at least ``min_correlation`` on average (absolute value).
    Groups keep the order of ``columns`` inside and are ordered by their first member."""
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform
    from scipy.stats import spearmanr

    cols = list(columns)
    if len(cols) < 2:
        return [[c] for c in cols]
    dense = x_train[:, cols]
    dense = dense.toarray() if hasattr(dense, "toarray") else np.asarray(dense)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant column has no rank correlation: nan -> 0
        corr = np.atleast_2d(spearmanr(dense).statistic)
    if corr.shape != (len(cols), len(cols)):  # two columns: spearmanr returns one number
        corr = np.array([[1.0, float(corr.ravel()[0])], [float(corr.ravel()[0]), 1.0]])
    corr = np.nan_to_num((corr + corr.T) / 2, nan=0.0)
    np.fill_diagonal(corr, 1.0)
    distance = np.clip(1.0 - np.abs(corr), 0.0, None)
    tree = hierarchy.linkage(squareform(distance, checks=False), method="average")
    ids = hierarchy.fcluster(tree, t=1.0 - min_correlation, criterion="distance")
    groups: dict[int, list[int]] = {}
    for col, gid in zip(cols, ids, strict=True):
        groups.setdefault(int(gid), []).append(col)
    return sorted(groups.values(), key=lambda g: cols.index(g[0]))


class _BlockRows(BaseEstimator):
    """The fitted ``model`` behind an input with one column per block of ``x`` columns: column ``b`` names, for each
    row, the row of ``x`` whose values block ``b`` takes. Unshuffled it is the row itself (``x`` as it is);
    :func:`sklearn.inspection.permutation_importance` shuffling column ``b`` shuffles the block's columns together.
    The columns in no block stay with their own row (permutation_importance keeps the row order)."""

    def __init__(self, model: Any = None, x: Any = None, blocks: Sequence[Sequence[int]] = (),
                 two_d: bool = False) -> None:
        self.model, self.x, self.blocks, self.two_d = model, x, blocks, two_d

    def fit(self, X: Any, y: Any = None) -> _BlockRows:  # noqa: N803 - scikit-learn's signature
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        rows = np.asarray(X, dtype=np.intp)
        out = self.x.copy()
        for b, cols in enumerate(self.blocks):
            out[:, cols] = self.x[np.ix_(rows[:, b], cols)]
        pred = np.asarray(self.model.predict(out)).astype(np.int64)
        return pred.reshape(len(pred), -1) if self.two_d else pred  # one label's 0/1 matrix comes back 1-D


Score = Callable[[np.ndarray, np.ndarray], float]


def block_drops(model: Any, x_eval: Any, y_eval: np.ndarray, blocks: Sequence[Sequence[int]], repeats: int,
                seed: int, score: Score | None = None) -> list[tuple[float, float]]:
    """Mean and std of the drop in ``score(y_true, y_pred)`` (default: scikit-learn's micro F1) on ``(x_eval,
    y_eval)`` when each block of columns is shuffled among the rows, together (``repeats`` shuffles each)."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import make_scorer

    if not blocks:
        return []
    dense = x_eval.toarray() if hasattr(x_eval, "toarray") else np.array(x_eval)
    own_rows = np.repeat(np.arange(dense.shape[0])[:, None], len(blocks), axis=1)
    found = permutation_importance(_BlockRows(model, dense, [list(b) for b in blocks], y_eval.ndim == 2), own_rows,
                                   y_eval, scoring=make_scorer(score) if score else "f1_micro", n_repeats=repeats,
                                   random_state=seed, n_jobs=1)
    return [(float(m), float(s)) for m, s in zip(found.importances_mean, found.importances_std, strict=True)]


def group_name(features: Sequence[str]) -> str:
    """'"heart" + "rate" + "bpm"', then '+ N more' past :data:`NAME_WORDS` (feature prefixes ``w:`` etc. dropped)."""
    shown = [f'"{f.split(":", 1)[1] if f[:2] in ("w:", "c:", "e:") else f}"' for f in features[:NAME_WORDS]]
    more = len(features) - len(shown)
    return " + ".join(shown) + (f" + {more} more" if more else "")


def grouped_importance(model: Any, x_train: Any, x_eval: Any, y_eval: np.ndarray, names: Sequence[str],
                       columns: Sequence[int], min_correlation: float, repeats: int, seed: int,
                       score: Score | None = None) -> tuple[GroupImportance, ...]:
    """The groups of correlated ``columns`` (highest impurity first, as given) with their grouped permutation
    importance, highest first."""
    groups = correlated_groups(x_train, columns, min_correlation)
    drops = block_drops(model, x_eval, y_eval, groups, repeats, seed, score)
    out = [GroupImportance(group_name([names[c] for c in g]), tuple(names[c] for c in g), m, s)
           for g, (m, s) in zip(groups, drops, strict=True)]
    return tuple(sorted(out, key=lambda g: -g.permutation_mean))
