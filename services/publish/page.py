"""The publication page, as one self-contained HTML document.

`render_campaign_page(static=False)` is what publish serves at `GET /campaigns/{id}`: the page
reads the results API and its live stream. `static=True` is what the publisher writes as
`{campaign}/index.html` next to `latest.json`: the page then reads `./latest.json`, and the
optional embedded campaign and snapshot let it show something even when opened from disk.
CSS and JS are inlined so the file works alone, with no other route and no network.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from services.runtime.inlined_page import inline_assets, replace_once

_MODE_API = '<meta name="votestream-mode" content="api">'
_MODE_STATIC = '<meta name="votestream-mode" content="static">'
_DATA = '<script type="application/json" id="votestream-data">null</script>'


def render_campaign_page(
    static: bool,
    *,
    campaign: Mapping[str, Any] | None = None,
    snapshot: Mapping[str, Any] | None = None,
) -> bytes:
    """The page; `campaign` and `snapshot` are embedded only in the static variant."""
    html = _inlined_template()
    if static:
        html = replace_once(html, _MODE_API, _MODE_STATIC)
        if campaign is not None or snapshot is not None:
            data = {"campaign": campaign, "snapshot": snapshot}
            html = replace_once(html, _DATA, _DATA.replace("null", _script_json(data)))
    return html.encode("utf-8")


@functools.cache
def _inlined_template() -> str:
    return inline_assets("services.publish", "campaign")


def _script_json(data: Mapping[str, Any]) -> str:
    # "<" escaped so no string inside the data can close the <script> element.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
