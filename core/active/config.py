"""``ScoreConfig``: what a scoring run does. The Queue page form, the ``cli.py score`` flags (generated from the
field metadata, :mod:`core.configs`) and the ``score`` job row share it (JSON round trip)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.active.registry import DEFAULT_STRATEGY, get_strategy, run_strategies, strategy_names
from core.active.strategies import QueryStrategy
from core.configs import JsonConfig, meta
from core.types import ReportLensError

MAX_MC_PASSES = 50
CLI_DEST_PREFIX = "scoreconfig_"


@dataclass(frozen=True)
class ScoreConfig(JsonConfig):
    """What a scoring run does; the Queue page form, ``cli.py score`` and the job row share it (JSON round trip)."""

    KIND = "scoring config"

    strategy: str = field(default=DEFAULT_STRATEGY, metadata=meta(
        "query strategy the queue is ranked by (every run also stores the others, so the page can switch)",
        choices=strategy_names()))
    per_token: bool = field(default=False, metadata=meta(
        "uncertainty per token, so long reports are not always first"))
    mc_passes: int = field(default=10, metadata=meta(
        "MC-dropout passes, for the strategies that need them (bald)", minimum=2, maximum=MAX_MC_PASSES))
    batch_size: int = field(default=64, metadata=meta(
        "windows per forward pass (sorted by length, so little padding)", minimum=1, advanced=True))
    seed: int = field(default=0, metadata=meta("seed for random and MC dropout", minimum=0, advanced=True))
    runtime: str = field(default="torch", metadata=meta(
        "model runtime: torch, onnx (the version's ONNX export, `cli.py export --format onnx`), onnx-int8, or "
        "an export folder", advanced=True))

    def __post_init__(self) -> None:
        if self.strategy not in strategy_names():
            raise ReportLensError(f"Unknown strategy {self.strategy!r}; choose one of {', '.join(strategy_names())}.")
        if not isinstance(self.mc_passes, int) or not (2 <= self.mc_passes <= MAX_MC_PASSES):
            raise ReportLensError(f"mc_passes must be a whole number from 2 to {MAX_MC_PASSES}; got "
                                  f"{self.mc_passes!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ReportLensError(f"batch_size must be a whole number >= 1; got {self.batch_size!r}.")
        if not isinstance(self.runtime, str) or not self.runtime.strip():
            raise ReportLensError(f"runtime must be torch, onnx, onnx-int8 or an ONNX export folder; got "
                                  f"{self.runtime!r}.")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ReportLensError(f"seed must be a whole number >= 0; got {self.seed!r}.")

    def primary(self) -> QueryStrategy:
        """The strategy the queue is ranked by (with a model)."""
        return get_strategy(self.strategy, per_token=self.per_token, passes=self.mc_passes, seed=self.seed)

    def strategies(self, cold_start: bool = False) -> list[QueryStrategy]:
        """Every strategy the run stores, the one the queue is ranked by first (core.active.run_strategies)."""
        return run_strategies(self.strategy, per_token=self.per_token, passes=self.mc_passes, seed=self.seed,
                              cold_start=cold_start)
