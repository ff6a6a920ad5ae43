"""The H5 voting page served at `GET /vote/{campaign_id}`, as one self-contained document
(services/runtime/inlined_page.py).

The page reads the campaign id from its own path, so one rendering serves every campaign.
"""

from __future__ import annotations

import functools

from services.runtime.inlined_page import inline_assets


@functools.cache
def render_vote_page() -> bytes:
    """The page's bytes (UTF-8 HTML); cached, since it is the same for every request."""
    return inline_assets("services.ingest", "vote").encode("utf-8")
