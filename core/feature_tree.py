"""A fitted decision tree on 0/1 word-presence features as indented text a researcher can read: splits say "report
contains 'bpm'" / "lacks", leaves count their training samples and name the classes ("FINDING present 12/12", or
"HEART_RATE (30 of 34 training entities; INTERVAL 4)") instead of scikit-learn's ``export_text`` "class: 0".

Used by :func:`core.features.fit_explainer`; pure numpy over a fitted ``sklearn.tree.DecisionTreeClassifier``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _feature_text(name: str) -> str:
    return f'"{name.split(":", 1)[1] if name[:2] in ("w:", "c:", "e:") else name}"'


def tree_text(tree: Any, names: Sequence[str], labels: Sequence[str], multi: bool, unit: str = "report") -> str:
    """A fitted decision tree on 0/1 features as indented text a reader can follow: each split is "<unit> contains
    '<word>'" or "lacks", each leaf counts its training samples and says, per label, how many have it (multi-label:
    "FINDING present 12/12") or which class wins (single label: "HEART_RATE (30 of 34; INTERVAL 4)")."""
    t = tree.tree_
    plural = f"{unit}s" if unit != "entity" else "entities"

    def counts(node: int) -> np.ndarray:  # (outputs, classes) sample counts, whether value holds counts or shares
        v = np.asarray(t.value[node], dtype=np.float64)
        n = float(t.n_node_samples[node])
        return np.rint(v / np.maximum(v.sum(axis=-1, keepdims=True), 1e-12) * n).astype(int)

    def leaf(node: int) -> str:
        n, c = int(t.n_node_samples[node]), counts(node)
        if multi:
            parts = []
            for k, lab in enumerate(labels):
                classes = list(tree.classes_[k] if tree.n_outputs_ > 1 else tree.classes_)  # one label: 1-D
                have = int(c[k][classes.index(1)]) if 1 in classes else 0
                parts.append(f"{lab} {'present' if 2 * have > n else 'absent'} {have}/{n}")
            return f"{n} training {unit if n == 1 else plural}: " + ", ".join(parts)
        row = c[0]
        order = [int(i) for i in np.argsort(-row, kind="stable") if row[i] > 0]
        best = labels[order[0]]
        rest = "; ".join(f"{labels[i]} {int(row[i])}" for i in order[1:])
        what = f"{n} training {unit if n == 1 else plural}"
        return f"{best} ({int(row[order[0]])} of {what}{'; ' + rest if rest else ''})"

    lines = []
    kind = "how many of them have each label" if multi else "the class most of them have"
    lines.append(f"# one decision tree (depth {tree.get_depth()}) on word presence; a leaf: its training {plural} "
                 f"and {kind}" + (f" ({', '.join(labels)})" if multi else ""))

    def walk(node: int, depth: int) -> None:
        pad = "|   " * depth
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left == right:  # a leaf
            lines.append(f"{pad}|--- => {leaf(node)}")
            return
        word = _feature_text(names[int(t.feature[node])])
        lines.append(f"{pad}|--- {unit} lacks {word}")
        walk(left, depth + 1)
        lines.append(f"{pad}|--- {unit} contains {word}")
        walk(right, depth + 1)

    walk(0, 0)
    return "\n".join(lines)
