"""Write ``docs/issue-codes.md`` from the catalogue in ``core/errors.py`` (``--check``: fail if it is out of date).

    .venv/bin/python scripts/issue_codes.py           # regenerate
    .venv/bin/python scripts/issue_codes.py --check   # exit 1 when the committed file differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.errors import catalogue_markdown  # noqa: E402

DOC = ROOT / "docs" / "issue-codes.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    text = catalogue_markdown()
    if args.check:
        if not DOC.is_file() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC.relative_to(ROOT)} is out of date; run python scripts/issue_codes.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
