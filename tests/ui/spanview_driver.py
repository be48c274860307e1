"""AppTest access to the Review page's span view (a Custom Component v2, which AppTest does not drive): the data
the page gave it, and an event sent as the browser sends it (the component's trigger, in the widget states of the
next run)."""

from __future__ import annotations

import json
from typing import Any

from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.testing.v1 import AppTest

from ui.spanview import NAME


def _element(at: AppTest) -> Any:
    found = [e for e in at.get("bidi_component") if e.proto.component_name == NAME]
    assert len(found) == 1, f"expected one span view, found {len(found)}"
    return found[0].proto


def view_data(at: AppTest) -> dict[str, Any]:
    """The ``data`` the span view was mounted with in the last run."""
    proto = _element(at)
    kind = proto.WhichOneof("data")
    return json.loads(proto.json if kind == "json" else proto.mixed.json)


def send_event(at: AppTest, event: dict[str, Any]) -> AppTest:
    """Run again with ``event`` as the span view's ``event`` trigger (what ``setTriggerValue("event", ...)`` sends)."""
    states = at._tree.get_widget_states()
    ws = states.widgets.add()
    ws.id = _make_trigger_id(_element(at).id, "events")
    ws.json_trigger_value = json.dumps([{"event": "event", "value": event}])
    return at._run(states)


def key_of(item: dict[str, Any]) -> list[Any]:
    return [item["start"], item["end"], item["label"]]
