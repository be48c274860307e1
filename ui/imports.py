"""Import sections shared by the Import and Label Studio pages: the documents whose text an import or a pull
changed (``text_changed``), the text key a file was read with, the import history, and a pull's results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from services.imports import text_key_notes

SOURCE_HELP = ("Where this file comes from (e.g. the Label Studio server, 'hospital-b'). It is part of each "
               "document's identity: task ids from different sources never overwrite one another. Leave empty for "
               "an export of this project's usual Label Studio ('local'); use the same name again to update.")
IMPORT_UNDO = ("**To undo**, import the earlier export again with the same source name. If these are different "
               "reports that share task ids (another Label Studio project or server), import the file with its own "
               "source name instead. Strict mode refuses such an import.")


def pull_undo(url: str) -> str:
    """How to undo a pull's text change: the pull's source is the server (``ls:<url>/<project>``)."""
    return (f"**To undo**, restore the text in Label Studio and pull again, or import the earlier export again on "
            f"the Import page with the source name `{url}` (the pull's source).")


def changed_documents(last: dict[str, Any], what: str = "import", undo: str = IMPORT_UNDO) -> None:
    """The documents whose stored text this import (or pull) replaced, their stale annotations and how to undo it."""
    changed = last.get("text_changed") or []
    if not changed:
        return
    st.warning(
        f"This {what} changed the text of **{len(changed)}** stored document(s). Their earlier annotations are "
        f"kept, flagged stale (they no longer train). {undo}", icon="⚠️")
    df = pd.DataFrame(changed).rename(columns={"document_id": "document", "source_key": "source",
                                               "stale_annotations": "stale annotations"})
    st.dataframe(df, hide_index=True, width="stretch")


def text_key_note(last: dict[str, Any]) -> None:
    """Says so when a file held its text under another key than the project's (the project kept its own)."""
    for note in text_key_notes(last):
        st.info(note, icon="🔑")


def history_table(history: Sequence[Any]) -> None:
    """The project's imports: file, format, status, documents added / updated / whose text changed, skipped."""
    rows = [{"file": h.file_name, "format": h.format, "status": h.status, "started": h.started_at,
             "added": (h.summary or {}).get("documents_added"), "updated": (h.summary or {}).get("documents_updated"),
             "text changed": len((h.summary or {}).get("text_changed") or []),
             "skipped": len((h.summary or {}).get("skipped", [])), "error": h.error} for h in history]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"text changed": st.column_config.NumberColumn(
                     help="Stored documents whose text this import replaced (their annotations are kept, stale)")})


def pull_results(pulled: dict[str, Any]) -> None:
    """What a pull did: counts, the documents whose annotations changed, text changes, the issues."""
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Tasks read", pulled["tasks"])
    m2.metric("New annotations", pulled["annotations_new"])
    m3.metric("Updated", pulled["annotations_updated"])
    m4.metric("Unchanged", pulled["annotations_unchanged"])
    changed = [c for c in pulled["changes"] if c["new"] or c["updated"]]
    if changed:
        st.dataframe(pd.DataFrame(changed), hide_index=True, width="stretch")
    elif not pulled.get("text_changed"):
        st.info("Nothing changed since the last pull.")
    changed_documents(pulled, "pull", pull_undo(pulled["url"]))
    for issue in pulled["issues"]:
        st.warning(issue)
