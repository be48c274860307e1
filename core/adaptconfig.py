"""``AdaptConfig``: what an adaptation run does (vocabulary extension + continued masked-LM pretraining on the
project's own text). One validated object drives the Train page's Adapt form, ``cli.py adapt`` and the job row,
like ``TrainConfig``. Defaults are sized for 2 CPU cores (``bench/README.md``, "Adaptation")."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field, fields
from typing import Any

from core.configs import JsonConfig, add_flags, field_specs, from_flags, meta
from core.types import ReportLensError

METHODS = ("full", "lora")
DEFAULT_LR = {"full": 1e-4, "lora": 1e-3}
CLI_DEST_PREFIX = "adaptconfig_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class AdaptConfig(JsonConfig):
    """How to adapt a base model to a project's text."""

    KIND = "adaptation config"

    name: str = field(default="", metadata=meta(
        "name of the new base model version (letters, digits, . _ -); empty = adapted-N"))
    parent: str = field(default="bundled", metadata=meta(
        "the base model to start from: 'bundled', a base version of this project (by name), a local Hugging Face "
        "model folder, or a Hub id already in the local cache (with HF_HUB_OFFLINE=1)"))
    vocab_min_count: int = field(default=3, metadata=meta(
        "add an unknown character (or word piece) to the vocabulary when the project's text has it this often",
        minimum=1, maximum=1_000_000))
    vocab_max_new: int = field(default=3000, metadata=meta(
        "at most this many new vocabulary entries (the most frequent first); 0 = keep the vocabulary", minimum=0,
        maximum=50_000))
    mlm_steps: int = field(default=150, metadata=meta(
        "optimizer steps of continued masked-LM pretraining; 0 = vocabulary extension only", minimum=0,
        maximum=1_000_000))
    epochs: int | None = field(default=None, metadata=meta(
        "stop after this many passes over the text even before mlm_steps; empty = no limit", minimum=1, maximum=1000,
        advanced=True))
    method: str = field(default="full", metadata=meta(
        "'full' (all weights) or 'lora' (adapters merged into the saved model); new vocabulary rows are always "
        "trained", choices=METHODS))
    lora_r: int = field(default=16, metadata=meta("LoRA rank", minimum=1, maximum=256, applies_to="lora",
                                                  advanced=True))
    learning_rate: float | None = field(default=None, metadata=meta(
        f"peak learning rate; empty = {DEFAULT_LR['full']:g} full, {DEFAULT_LR['lora']:g} LoRA", "--lr",
        minimum=0.0, maximum=1.0, advanced=True))
    batch_size: int = field(default=16, metadata=meta("windows per step", minimum=1, maximum=1024, advanced=True))
    max_length: int = field(default=128, metadata=meta("tokens per window", minimum=8, maximum=8192, advanced=True))
    mask_prob: float = field(default=0.15, metadata=meta(
        "share of words masked (whole words: every piece of a word, each CJK character its own word)", minimum=0.01,
        maximum=0.6, advanced=True))
    entity_boost: float = field(default=0.0, metadata=meta(
        "mask words inside the project's labelled entities this many times more often; 0 = off", minimum=0.0,
        maximum=20.0, advanced=True))
    heldout_ratio: float = field(default=0.1, metadata=meta(
        "share of the windows held out to measure the masked-LM loss (early stopping)", minimum=0.0, maximum=0.5,
        advanced=True))
    eval_every: int = field(default=50, metadata=meta("measure the held-out loss every this many steps",
                                                      minimum=1, maximum=100_000, advanced=True))
    patience: int = field(default=3, metadata=meta(
        "stop after this many held-out measures without a lower loss and keep the best; 0 = off", minimum=0,
        maximum=1000, advanced=True))
    max_minutes: float = field(default=9.0, metadata=meta(
        "stop the masked-LM training after this many minutes (the model so far is kept); 0 = no limit", minimum=0.0,
        maximum=10_000.0, advanced=True))
    extra_text: str | None = field(default=None, metadata=meta(
        "more unlabelled reports to pretrain on besides the project's: a plain-text file (one report per line) or "
        "a Label Studio export (annotations not needed; any import format works)",
        advanced=True))
    seed: int = field(default=42, metadata=meta("random seed (masking, shuffling, new rows)", minimum=0,
                                                advanced=True))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or (self.name and not NAME_PATTERN.fullmatch(self.name)):
            raise ReportLensError(f"name {self.name!r} is not usable: 1 to 64 letters, digits, '.', '_' or '-', "
                                  "starting with a letter or digit (it becomes a folder name).")
        if self.name == "bundled":
            raise ReportLensError("name 'bundled' is the default base model's; choose another name.")
        if not isinstance(self.parent, str) or not self.parent.strip():
            raise ReportLensError("parent is empty; use 'bundled', a base version name or a local model folder.")
        if self.method not in METHODS:
            raise ReportLensError(f"method must be one of {', '.join(map(repr, METHODS))}; got {self.method!r}.")
        for f in fields(self):
            self._check(f.name, str(f.type), f.metadata)

    def _check(self, name: str, kind: str, spec: Any) -> None:
        value = getattr(self, name)
        if not kind.startswith(("int", "float")) or (value is None and kind.endswith("| None")):
            return
        integer = kind.startswith("int")
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            raise ReportLensError(f"{name} must be {'an integer' if integer else 'a number'}; got {value!r}.")
        lo, hi = spec.get("min"), spec.get("max")
        if name == "learning_rate" and not 0 < value <= hi:
            raise ReportLensError(f"learning_rate must be in (0, {hi:g}]; got {value!r}.")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ReportLensError(f"{name} must be between {lo:g} and {hi:g}; got {value!r}. "
                                  f"{spec['help'].capitalize()}.")

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.method]


def fields_for_form() -> list[dict[str, Any]]:
    return field_specs(AdaptConfig)


def add_cli_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_flags(parser.add_argument_group("adaptation config"), fields_for_form(), CLI_DEST_PREFIX)
    return parser


def from_cli_args(ns: argparse.Namespace) -> AdaptConfig:
    return from_flags(ns, AdaptConfig, CLI_DEST_PREFIX)
