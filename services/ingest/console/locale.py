"""The console's strings, one JSON file per language in locales/ (zh-CN first).

A page asks `t("campaign.counted")`; a key missing from a language falls back to zh-CN, and
a key missing there is shown as itself, so a forgotten string is visible, never an error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib.resources import files

DEFAULT = "zh-CN"
LANGUAGES = ("zh-CN", "en")


@functools.cache
def strings(language: str) -> dict[str, str]:
    text = files("services.ingest.console").joinpath(f"locales/{language}.json").read_text("utf-8")
    found: dict[str, str] = json.loads(text)
    return found


def translator(language: str) -> Callable[[str], str]:
    own, fallback = strings(language), strings(DEFAULT)

    def t(key: str) -> str:
        return own.get(key) or fallback.get(key) or key

    return t


def pick_language(query: str | None, cookie: str | None, accept: str) -> str:
    """?lang= first, then the remembered choice, then the browser's first supported language."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice
    for part in accept.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh-CN"
    return DEFAULT
