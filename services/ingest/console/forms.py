"""The campaign form: its fields to a campaign definition, and each validation error back
to the field it belongs to. Pure: the console's pages and its tests share it.

Times are typed as the campaign's local wall-clock time (an <input type=datetime-local>)
and stored with the offset of the campaign's time zone. Candidates are one per line,
`id | title | unit`, in the order voters see them. The optional stuffing defences are typed
as YAML, exactly as in a campaign file (docs/ARCHITECTURE.md, "Defences").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from services.domain.campaign import CHANNELS, Campaign

FIELDS = (
    "id",
    "title",
    "organizer",
    "question",
    "timezone",
    "opens_at",
    "closes_at",
    "top_n",
    "min_selections",
    "max_selections",
    "per_voter",
    "period",
    "channels",
    "kiosk_grace",
    "candidates",
    "defenses",
)
# the definition's error prefixes (services/domain/campaign.py) that are named otherwise here
_FIELD_OF_PREFIX = {
    "ballot.min_selections": "min_selections",
    "ballot.max_selections": "max_selections",
    "ballot": "max_selections",
    "limit.per_voter": "per_voter",
    "limit.period": "period",
    "limit": "per_voter",
}
FORM_ERROR = "form"  # errors that belong to no single field: shown above the form


def definition_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The definition the form describes; what is wrong is left for parse_campaign to name."""
    tz_name = str(form.get("timezone", "")).strip()
    return {
        "id": _text(form, "id"),
        "title": _text(form, "title"),
        "organizer": _text(form, "organizer"),
        "question": _text(form, "question"),
        "timezone": tz_name,
        "opens_at": _local_time(form.get("opens_at"), tz_name),
        "closes_at": _local_time(form.get("closes_at"), tz_name),
        "top_n": _number(form, "top_n"),
        "ballot": {
            "min_selections": _number(form, "min_selections"),
            "max_selections": _number(form, "max_selections"),
        },
        "limit": {"per_voter": _number(form, "per_voter"), "period": _text(form, "period")},
        "channels": {name: {} for name in CHANNELS if name in _listed(form, "channels")},
        "kiosk_grace": _text(form, "kiosk_grace") or "10m",
        "candidates": _candidates(str(form.get("candidates", ""))),
    } | _defenses(str(form.get("defenses", "")))


def form_from_campaign(campaign: Campaign) -> dict[str, Any]:
    """The form filled in from a stored campaign (for editing it)."""
    tz = campaign.tz
    return {
        "id": campaign.id,
        "title": campaign.title,
        "organizer": campaign.organizer,
        "question": campaign.question,
        "timezone": campaign.timezone,
        "opens_at": campaign.opens_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "closes_at": campaign.closes_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "top_n": str(campaign.top_n),
        "min_selections": str(campaign.min_selections),
        "max_selections": str(campaign.max_selections),
        "per_voter": str(campaign.per_voter),
        "period": campaign.period,
        "channels": list(campaign.channels),
        "kiosk_grace": f"{int(campaign.kiosk_grace.total_seconds())}s",
        "candidates": "\n".join(f"{c.id} | {c.title} | {c.unit}" for c in campaign.candidates),
        "defenses": _yaml(campaign.defenses.to_dict()) if campaign.defenses else "",
    }


def errors_by_field(errors: list[str]) -> dict[str, list[str]]:
    """`ballot.max_selections: must be ...` -> {"max_selections": ["must be ..."]}."""
    found: dict[str, list[str]] = {}
    for error in errors:
        where, _, message = error.partition(": ")
        found.setdefault(_field(where), []).append(message or error)
    return found


def _field(where: str) -> str:
    if where in _FIELD_OF_PREFIX:
        return _FIELD_OF_PREFIX[where]
    head = where.split("[", 1)[0].split(".", 1)[0]
    return head if head in FIELDS else FORM_ERROR


def _text(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name, "")).strip()


def _number(form: Mapping[str, Any], name: str) -> Any:
    raw = _text(form, name)
    # isdecimal, not isdigit: "²" is a digit that int() refuses
    return int(raw) if raw.isdecimal() else raw  # not a number: parse_campaign names it


def _listed(form: Mapping[str, Any], name: str) -> list[str]:
    value = form.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def _local_time(raw: Any, tz_name: str) -> str:
    text = str(raw or "").strip()
    try:
        moment = datetime.fromisoformat(text)
        tz = ZoneInfo(tz_name)
    except (ValueError, ZoneInfoNotFoundError):
        return text  # parse_campaign names the bad time or time zone
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.isoformat()


def _defenses(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        return {"defenses": yaml.safe_load(text)}
    except yaml.YAMLError:
        return {"defenses": text}  # not a mapping: parse_campaign names the field


def _yaml(data: Any) -> str:
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def _candidates(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        cid, title, unit = [*parts, "", "", ""][:3]
        rows.append({"id": cid, "title": title, "unit": unit})
    return rows
