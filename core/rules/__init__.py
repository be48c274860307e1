"""Rule-based extraction for ECG reports: :func:`extract_ecg` (measurements, statements from the ECG lexicon,
negation/uncertainty), and the hook that maps rule labels to a project's labels (:mod:`core.rules.labels`)."""

from core.rules.ecg import CUE_LABELS, RULE_LABELS, extract_ecg, normalise_entity
from core.rules.labels import DEMO_LABEL_MAP, LabelMap, label_map_for, map_labels
from core.rules.negation import annotate

__all__ = ["CUE_LABELS", "DEMO_LABEL_MAP", "RULE_LABELS", "LabelMap", "annotate", "extract_ecg", "label_map_for",
           "map_labels", "normalise_entity"]
