"""Reading a rendered form the way a browser would submit it (stdlib HTML parser)."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self, action_pattern: str) -> None:
        super().__init__(convert_charrefs=True)
        self.pattern = re.compile(action_pattern)
        self.inside = False
        self.done = False
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._text: list[str] = []
        self._select: str | None = None
        self._selected: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and not self.done and self.pattern.search(a.get("action") or ""):
            self.inside = True
            return
        if not self.inside:
            return
        if (
            tag == "input"
            and a.get("name")
            and a.get("type") not in ("submit", "checkbox", "radio")
        ):
            self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], []
        elif tag == "select" and a.get("name"):
            self._select, self._selected, self._first_option = a["name"], None, None
        elif tag == "option" and self._select is not None:
            value = a.get("value") or ""
            if self._first_option is None:
                self._first_option = value
            if "selected" in a:
                self._selected = value

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            # Like a browser: one newline straight after <textarea> is not part of the value.
            text = text.removeprefix("\r\n") if text.startswith("\r\n") else text
            self.fields.append((self._textarea, text.removeprefix("\n")))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = self._selected if self._selected is not None else self._first_option
            self.fields.append((self._select, chosen or ""))
            self._select = None
        elif tag == "form":
            self.inside, self.done = False, True


def form_fields(html: str, action_pattern: str = r"/edit$") -> dict[str, str]:
    """The name -> value pairs the first form whose action matches would send."""
    reader = _FormReader(action_pattern)
    reader.feed(html)
    assert reader.fields, f"no form matching {action_pattern!r} in the page"
    return dict(reader.fields)


def fill_action(fields: dict[str, str], index: int, world, **overrides) -> dict[str, str]:
    """Type a complete SMART action into row ``index``."""
    values = {
        "description": "Run weekend theatre lists for orthopaedics",
        "measure_id": str(world.measures["RTT18"].id),
        "expected_effect": "from 76% to 85% by March 2027",
        "owner_id": str(world.lead.id),
        "resources": "Theatre staff overtime",
        "domain_id": str(world.domains["access"].id),
        "deliverable": "",
        "due_on": "2027-03-31",
        "milestones": "",
        **overrides,
    }
    for name, value in values.items():
        fields[f"actions-{index}-{name}"] = value
    return fields


def fill_plan(fields: dict[str, str], world) -> dict[str, str]:
    """A plan that passes the SMART check: one action on RTT18 and two planned values."""
    fields.update(
        {
            "summary": "Referral to treatment has fallen below 80% for three months.",
            "risk_assessment": "Long waits raise the risk of harm; clinical review of the list.",
            "risk_level": "high",
            f"trajectory-{world.measures['RTT18'].id}-2026-12": "78",
            f"trajectory-{world.measures['RTT18'].id}-2027-03": "85",
        }
    )
    return fill_action(fields, 0, world)
