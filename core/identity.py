"""Which stored document a parsed task is: the task id rules and the source key (pure; the importer applies them).

A document is identified, inside a project, by ``(source_key, ls_task_id)`` when its task has an id, and by the
sha256 of its text when it has none. The source key says where the task ids were counted:

* ``ls:<instance>/<project>`` when the export says which Label Studio project the task is in (a full JSON export
  carries ``project`` on every task; a server pull knows its URL and project). ``<instance>`` is the source name
  the user gives (``cli.py import --source NAME``, "Source name" on the Import page), else ``local``; a pull uses
  the server URL.
* ``file:<name>`` when the export does not say (JSON-MIN, hand-made JSON) and the user named the source, else
  ``file`` (one shared, unnamed source: ids from files that name no project and no source are one numbering).
* ``legacy`` for documents stored before source keys existed (migration 0005): the first import that brings the
  same task id claims them.

Task ids are whole numbers from 0 to 2**63-1 (Label Studio counts from 1, hand-made files often from 0; a BIGINT
holds 2**63-1). An integral float
(``3.0``, which some JSON tools write) is read as ``3``, and so is a plain decimal string (``"3"``); everything else
that is present and not ``null`` -- a boolean, a padded (``" 7 "``), signed or zero-padded string, a fraction, a
number out of range, a list -- is refused: the task is skipped with ``invalid_task_id`` rather than silently stored
as an id-less task (which made it a new document keyed by its text).
"""

from __future__ import annotations

from typing import Any

MAX_TASK_ID = 2**63 - 1
LEGACY_SOURCE = "legacy"
DEFAULT_INSTANCE = "local"
UNNAMED_FILE_SOURCE = "file"
MAX_SOURCE_KEY = 300


def read_task_id(value: Any) -> tuple[int | None, str | None]:
    """``(task id, None)``, ``(None, None)`` for no id (``None``), or ``(None, problem)`` for an id that is refused."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return None, "a boolean"
    if isinstance(value, float):
        if not value.is_integer():
            return None, "not a whole number"
        value = int(value)
    elif isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            return None, "a string that is not a plain number" + (" (it has spaces)" if value != value.strip()
                                                                   else "")
        if len(value) > 1 and value.startswith("0"):
            return None, "a number with leading zeros"
        value = int(value)
    elif not isinstance(value, int):
        return None, f"a {type(value).__name__}"
    if not 0 <= value <= MAX_TASK_ID:
        return None, "negative" if value < 0 else "above 2**63-1"
    return value, None


def source_name(value: str | None) -> str | None:
    """The user's name for a source, stripped; ``None`` when empty. Raises ``ValueError`` when too long."""
    name = (value or "").strip()
    if len(name) > MAX_SOURCE_KEY - 40:
        raise ValueError(f"the source name is {len(name)} characters long; use at most {MAX_SOURCE_KEY - 40}")
    return name or None


def source_key(name: str | None, ls_project: int | None) -> str:
    """The key of a file's source: see the module docstring."""
    if ls_project is not None:
        return f"ls:{name or DEFAULT_INSTANCE}/{ls_project}"
    return f"{UNNAMED_FILE_SOURCE}:{name}" if name else UNNAMED_FILE_SOURCE


def server_source_key(url: str, ls_project: int) -> str:
    """The key of a Label Studio server project (a pull): ``ls:<url without trailing slash>/<project>``."""
    return f"ls:{url.rstrip('/')}/{int(ls_project)}"
