"""A long-lived ``cli.py`` process for tests that run many imports (the fuzzer): one JSON request per stdin line,
``{"argv": [...]}``, answered by one JSON line ``{"rc", "stdout", "stderr", "traceback", "counts"}``.

Each request runs ``cli.main(argv)`` as ``python cli.py ARGV`` would (its own stdout/stderr captured), so a test
sees the exit code, the messages and any uncaught exception (``traceback``), and then the row counts of the SQLite
file at ``REPORTLENS_DATABASE_URL``: the process starts once (about 2 s), each import then costs milliseconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("documents", "annotations", "spans")


def counts() -> dict[str, int]:
    url = os.environ["REPORTLENS_DATABASE_URL"]
    path = url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return dict.fromkeys(TABLES, 0)
    with contextlib.closing(sqlite3.connect(path)) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608


def run(argv: list[str]) -> dict[str, object]:
    import cli

    out, err = io.StringIO(), io.StringIO()
    tb = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - what the test must see: python cli.py would print a traceback
            tb = traceback.format_exc()
            rc = 1
    return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue(), "traceback": tb, "counts": counts()}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(run(request["argv"])), flush=True)


if __name__ == "__main__":
    main()
