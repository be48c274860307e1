"""Validated configuration dataclasses, one shape for all of them (transformers ``TrainingArguments`` style): field
metadata (:func:`meta`) drives the page form (:func:`field_specs`) and the ``cli.py`` flags (:func:`add_flags` /
:func:`from_flags`), and :class:`JsonConfig` gives the JSON round trip that the job rows store, refusing unknown keys.

``TrainConfig`` (training), ``ScoreConfig`` (active learning) and the alignment flags of ``cli.py convert`` all use
it, so a new option is one field with its metadata: the form, the flags and the stored JSON follow.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import MISSING, asdict, fields, replace
from typing import Any, Self

from core.types import ReportLensError


def meta(help: str, flag: str | None = None, *, advanced: bool = False, choices: Iterable[str] | None = None,
         minimum: float | None = None, maximum: float | None = None, applies_to: str | None = None,
         aliases: tuple[tuple[str, Any, str], ...] = ()) -> dict[str, Any]:
    """Field metadata: one-line help, the flag (default ``--field-name``), whether the form shows it under advanced
    settings, allowed values, bounds, which mode it applies to, and extra flags ``(flag, constant, help)`` that set
    the field to a constant (e.g. ``--first-subtoken-only``)."""
    return {"help": help, "flag": flag, "advanced": advanced, "choices": tuple(choices) if choices else None,
            "min": minimum, "max": maximum, "applies_to": applies_to, "aliases": aliases}


def field_specs(cls: type) -> list[dict[str, Any]]:
    """One dict per field of a config dataclass (name, type, default, optional, flag, help, choices, min, max,
    advanced, applies_to), in declaration order."""
    out = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else None
        kind = str(f.type).split(" |")[0]
        if kind.startswith("tuple"):
            kind, default = "list", list(default)
        if f.metadata.get("choices"):
            kind = "choice"
        out.append({"name": f.name, "type": kind, "default": default, "optional": str(f.type).endswith("| None"),
                    "flag": f.metadata.get("flag") or "--" + f.name.replace("_", "-"),
                    **{k: v for k, v in f.metadata.items() if k != "flag"}})
    return out


def _list_value(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def add_flags(group: Any, specs: Iterable[dict[str, Any]], prefix: str) -> None:
    """One argparse flag per spec (:func:`field_specs`), stored under ``prefix + name``; absent flags are left out of
    the namespace, so :func:`from_flags` keeps the config's own defaults."""
    for spec in specs:
        dest = prefix + spec["name"]
        default = spec["default"] if spec["default"] is not None else "auto"
        kw: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS,
                              "help": f"{spec.get('help', '')} (default: {default})"}
        flags = [spec["flag"]]
        if spec["flag"] != "--" + spec["name"].replace("_", "-"):
            flags.append("--" + spec["name"].replace("_", "-"))
        for alias, const, alias_help in spec.get("aliases") or ():
            group.add_argument(alias, dest=dest, action="store_const", const=const, default=argparse.SUPPRESS,
                               help=alias_help)
        if spec["type"] == "bool":
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **kw)
            continue
        if spec["type"] == "choice":
            kw["choices"] = spec["choices"]
        elif spec["type"] == "int":
            kw["type"], kw["metavar"] = int, "N"
        elif spec["type"] == "float":
            kw["type"], kw["metavar"] = float, "X"
        elif spec["type"] == "list":
            kw["type"], kw["metavar"] = _list_value, "A,B,..."
        group.add_argument(*flags, **kw)


def from_flags(ns: argparse.Namespace, cls: type, prefix: str, base: Any = None) -> Any:
    """A config of ``cls`` from parsed flags: the flags given override ``base`` (default: the defaults); validated
    by the config's own ``__post_init__``."""
    given = {k[len(prefix):]: v for k, v in vars(ns).items() if k.startswith(prefix)}
    return replace(base if base is not None else cls(), **given)


class JsonConfig:
    """``to_dict`` / ``from_dict`` for a frozen config dataclass; unknown keys are refused with the known ones."""

    KIND = "config"  # how messages name it, e.g. "training config"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        if not isinstance(d, dict):
            raise ReportLensError(f"A {cls.KIND} must be a JSON object; got {type(d).__name__}.")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ReportLensError(f"Unknown {cls.KIND} key(s) {', '.join(map(repr, unknown))}; "
                                  f"known keys: {', '.join(sorted(known))}.")
        return cls(**d)
