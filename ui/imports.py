"""Import page sections: the documents whose text an import changed (``ImportSummary.text_changed``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

SOURCE_HELP = ("Where this file comes from (e.g. the Label Studio server, 'hospital-b'). It is part of each "
               "document's identity: task ids from different sources never overwrite one another. Leave empty for "
               "an export of this project's usual Label Studio ('local'); use the same name again to update.")


def changed_documents(last: dict[str, Any]) -> None:
    """The documents whose stored text this import replaced, their stale annotations and how to undo it."""
    changed = last.get("text_changed") or []
    if not changed:
        return
    st.warning(
        f"This import changed the text of **{len(changed)}** stored document(s). Their earlier annotations are "
        "kept, flagged stale (they no longer train). **To undo**, import the earlier export again with the same "
        "source name. If these are different reports that share task ids (another Label Studio project or "
        "server), import the file with its own source name instead. Strict mode refuses such an import.",
        icon="⚠️")
    df = pd.DataFrame(changed).rename(columns={"document_id": "document", "source_key": "source",
                                               "stale_annotations": "stale annotations"})
    st.dataframe(df, hide_index=True, width="stretch")
