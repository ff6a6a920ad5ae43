"""Self-contained HTML pages: a template with its stylesheet and script inlined.

The vote page (ingest) and the publication page (publish) are each one document with no
other route and nothing fetched from elsewhere, which is what the WeChat in-app browser on a
weak connection, and a results file opened from disk, need. Both are built here, one way.
"""

from __future__ import annotations

from importlib.resources import files

# What both pages are sent with: their CSS and JS are inline (one response on a weak
# connection), and everything else comes only from the service itself.
_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'"
)
# The vote page is never framed: a page that frames it can trick a voter into casting.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": f"{_POLICY}; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The publication page only shows results, and broadcasters embed it in their own pages.
EMBEDDABLE_PAGE_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": f"{_POLICY}; frame-ancestors *",
}


def inline_assets(package: str, name: str) -> str:
    """`static/{name}.html` of `package` with `static/{name}.css` and `static/{name}.js`
    put in place of its `<link rel="stylesheet" href="{name}.css">` and
    `<script src="{name}.js"></script>`."""
    static = files(package).joinpath("static")
    html = static.joinpath(f"{name}.html").read_text("utf-8")
    css = static.joinpath(f"{name}.css").read_text("utf-8")
    js = static.joinpath(f"{name}.js").read_text("utf-8")
    _refuse_breakout(css, "</style")
    _refuse_breakout(js, "</script", "<!--")
    html = replace_once(
        html, f'<link rel="stylesheet" href="{name}.css">', f"<style>\n{css}</style>"
    )
    return replace_once(html, f'<script src="{name}.js"></script>', f"<script>\n{js}</script>")


def replace_once(text: str, old: str, new: str) -> str:
    # The markers are part of the template's contract: a missing one is a bug, not a no-op.
    if text.count(old) != 1:
        raise ValueError(f"the page template must contain {old!r} exactly once")
    return text.replace(old, new)


def _refuse_breakout(source: str, *markers: str) -> None:
    for marker in markers:
        if marker in source.lower():
            raise ValueError(f"{marker!r} in an inlined asset would end its element early")
