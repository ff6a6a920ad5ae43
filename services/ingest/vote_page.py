"""The H5 voting page served at `GET /vote/{campaign_id}`, as one self-contained document.

The page reads the campaign id from its own path, so one rendering serves every campaign.
CSS and JS are inlined: one response, no other route, nothing fetched from elsewhere, which
is what the WeChat in-app browser on a weak connection needs.
"""

from __future__ import annotations

import functools
from importlib.resources import files

_PACKAGE = "services.ingest"
_STYLESHEET = '<link rel="stylesheet" href="vote.css">'
_SCRIPT = '<script src="vote.js"></script>'


@functools.cache
def render_vote_page() -> bytes:
    """The page's bytes (UTF-8 HTML); cached, since it is the same for every request."""
    static = files(_PACKAGE).joinpath("static")
    html = static.joinpath("vote.html").read_text("utf-8")
    css = static.joinpath("vote.css").read_text("utf-8")
    js = static.joinpath("vote.js").read_text("utf-8")
    _refuse_breakout(css, "</style")
    _refuse_breakout(js, "</script", "<!--")
    html = _replace_once(html, _STYLESHEET, f"<style>\n{css}</style>")
    html = _replace_once(html, _SCRIPT, f"<script>\n{js}</script>")
    return html.encode("utf-8")


def _replace_once(text: str, old: str, new: str) -> str:
    # The markers are part of the template's contract: a missing one is a bug, not a no-op.
    if text.count(old) != 1:
        raise ValueError(f"vote.html must contain {old!r} exactly once")
    return text.replace(old, new)


def _refuse_breakout(source: str, *markers: str) -> None:
    for marker in markers:
        if marker in source.lower():
            raise ValueError(f"{marker!r} in an inlined asset would end its element early")
