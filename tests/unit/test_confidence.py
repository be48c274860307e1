"""Document confidence (core/confidence.py): the mean top-label probability over a report's tokens."""

from __future__ import annotations

import numpy as np
import pytest

from core.confidence import document_confidence


def test_mean_of_each_tokens_top_probability():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    assert document_confidence(probs) == pytest.approx((0.9 + 0.5 + 0.8) / 3)
    assert isinstance(document_confidence(probs), float)
    assert document_confidence(probs.tolist()) == pytest.approx(document_confidence(probs))


def test_a_report_without_tokens_is_certain():
    assert document_confidence(np.zeros((0, 5))) == 1.0
    assert document_confidence(None) == 1.0
