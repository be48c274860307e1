"""Document confidence: how sure a token-classification model is of a whole report, the one definition used when a
``Prediction`` row is stored (scoring runs, the Review and Label Studio pre-annotations, live extraction).

It is the mean over the report's content tokens of the top label probability (``1 - least confidence`` per token),
so a long report is not penalised for its length. A report without tokens is certain: there is nothing to get wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def document_confidence(probs: Any) -> float:
    """Mean top-label probability of ``probs`` (tokens x labels); ``1.0`` for ``None`` or a report without tokens."""
    if probs is None or len(probs) == 0:
        return 1.0
    return float(np.asarray(probs).max(axis=-1).mean())
