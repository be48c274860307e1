"""The size limits on what ReportLens reads, in one place: each a named setting, overridable by an environment
variable ``REPORTLENS_<NAME>`` (a whole number), read when the limit is used, and each enforced with a message that
names the limit and its variable (README "Limits").

They bound the time and memory a hostile or broken file can cost: a deeply nested JSON file, a report of many
megabytes sent to the rules, a task with a million regions, a zip of a million members.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.types import ReportLensError


@dataclass(frozen=True)
class Limit:
    """One limit: ``name`` (the variable is ``REPORTLENS_<name>``), its default, what it counts and bounds."""

    name: str
    default: int
    unit: str
    what: str

    @property
    def env(self) -> str:
        return f"REPORTLENS_{self.name}"

    @property
    def value(self) -> int:
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ReportLensError(f"{self.env}={raw!r} is not a whole number; unset it or give a number of "
                                  f"{self.unit} (default {self.default:,}).") from None
        if value < 1:
            raise ReportLensError(f"{self.env}={raw!r} must be at least 1 (default {self.default:,}).")
        return value

    def hint(self) -> str:
        """How to raise the limit, for messages."""
        return f"the limit is {self.value:,} {self.unit} ({self.env} raises it)"


MAX_JSON_DEPTH = Limit("MAX_JSON_DEPTH", 64, "levels",
                       "nesting of lists and objects in a JSON export (a Label Studio task needs about 7)")
MAX_TEXT_CHARS = Limit("MAX_TEXT_CHARS", 5_000_000, "characters", "the text of one imported task")
MAX_SPANS_PER_TASK = Limit("MAX_SPANS_PER_TASK", 20_000, "spans",
                           "the regions of one imported task, all its annotations and predictions together")
MAX_ZIP_ENTRIES = Limit("MAX_ZIP_ENTRIES", 100_000, "members", "the members of one imported .zip")
MAX_ZIP_MEMBER_BYTES = Limit("MAX_ZIP_MEMBER_BYTES", 200 * 2**20, "bytes", "one .zip member, read into memory")
MAX_ZIP_TOTAL_BYTES = Limit("MAX_ZIP_TOTAL_BYTES", 2 * 2**30, "bytes", "all members of one .zip, unpacked")
MAX_EXTRACT_CHARS = Limit("MAX_EXTRACT_CHARS", 1_000_000, "characters",
                          "one report given to the rule extractor (cli.py extract, Review)")
MAX_API_BODY_BYTES = Limit("MAX_API_BODY_BYTES", 2 * 2**20, "bytes",
                           "one HTTP request body to the API (`cli.py serve`), else 413")
MAX_API_TEXTS = Limit("MAX_API_TEXTS", 64, "texts", "the texts (or Label Studio tasks) of one API request, else 413")
MAX_API_TEXT_CHARS = Limit("MAX_API_TEXT_CHARS", 100_000, "characters", "one text sent to the API, else 413")
MAX_API_INFLIGHT = Limit("MAX_API_INFLIGHT", 8, "requests",
                         "API requests running the model at once; one more gets 503 with Retry-After at once")

LIMITS: tuple[Limit, ...] = (MAX_JSON_DEPTH, MAX_TEXT_CHARS, MAX_SPANS_PER_TASK, MAX_ZIP_ENTRIES,
                             MAX_ZIP_MEMBER_BYTES, MAX_ZIP_TOTAL_BYTES, MAX_EXTRACT_CHARS, MAX_API_BODY_BYTES,
                             MAX_API_TEXTS, MAX_API_TEXT_CHARS, MAX_API_INFLIGHT)


def readme_table() -> str:
    """The README "Limits" table (a test checks the README holds it)."""
    rows = ["| setting | default | bounds |", "|---|---|---|"]
    rows += [f"| `{lim.env}` | {lim.default:,} {lim.unit} | {lim.what} |" for lim in LIMITS]
    return "\n".join(rows)
