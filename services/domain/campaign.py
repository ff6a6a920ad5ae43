"""Campaign definitions: parsed once, validated completely, immutable afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.domain.defenses import Defenses, parse_defenses
from services.domain.errors import CampaignInvalidError

CHANNELS = ("web", "wechat", "kiosk")
Period = Literal["campaign", "day"]
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CHANNEL_SETTINGS = "settings like {name: 网站}: each a text, a number or true/false"


@dataclass(frozen=True)
class Candidate:
    id: str
    title: str
    unit: str


@dataclass(frozen=True)
class Campaign:
    id: str
    title: str
    organizer: str
    question: str
    timezone: str
    opens_at: datetime
    closes_at: datetime
    top_n: int
    min_selections: int
    max_selections: int
    per_voter: int
    period: Period
    channels: dict[str, dict[str, Any]]
    kiosk_grace: timedelta
    candidates: tuple[Candidate, ...]
    defenses: Defenses | None = None  # the optional `defenses:` section (defenses.py)
    candidate_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidate_ids", frozenset(c.id for c in self.candidates))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cutoff(self) -> datetime:
        """The last moment any ballot may be received (kiosks upload late)."""
        return self.closes_at + self.kiosk_grace

    def status(self, now: datetime) -> str:
        if now < self.opens_at:
            return "scheduled"
        return "open" if now < self.closes_at else "closed"

    def candidate_by_number(self, number: int) -> Candidate | None:
        """1-based numbering, as voters see it on posters and in WeChat."""
        return self.candidates[number - 1] if 1 <= number <= len(self.candidates) else None

    def public_view(self, now: datetime) -> dict[str, Any]:
        """What anyone may read: the definition and its status, without the thresholds of
        its stuffing defences (knowing them would help a click farm stay just under them)."""
        view = {**self.to_dict(), "status": self.status(now)}
        view.pop("defenses", None)
        return view

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data (it holds no secrets)."""
        return {
            "id": self.id,
            "title": self.title,
            "organizer": self.organizer,
            "question": self.question,
            "timezone": self.timezone,
            "opens_at": self.opens_at.isoformat(),
            "closes_at": self.closes_at.isoformat(),
            "top_n": self.top_n,
            "ballot": {
                "min_selections": self.min_selections,
                "max_selections": self.max_selections,
            },
            "limit": {"per_voter": self.per_voter, "period": self.period},
            "channels": self.channels,
            "kiosk_grace": f"{int(self.kiosk_grace.total_seconds())}s",
            "candidates": [{"id": c.id, "title": c.title, "unit": c.unit} for c in self.candidates],
        } | ({"defenses": self.defenses.to_dict()} if self.defenses else {})


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `2h`, `14d` -> timedelta; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 10m, 2h or 14d")
    try:
        return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    except OverflowError as exc:
        raise ValueError(f"{text!r} is longer than a calendar holds") from exc


def parse_campaign(data: Any) -> Campaign:
    """Build a Campaign, or raise CampaignInvalidError naming every error found."""
    if not isinstance(data, dict):
        raise CampaignInvalidError(["campaign: must be a mapping"])
    errors: list[str] = []
    get = _Reader(data, errors)
    cid = get.text("id")
    if cid and not _ID.match(cid):
        errors.append("id: use 1-64 lower-case letters, digits, '-' or '_'")
    tz_name = get.text("timezone")
    try:
        ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"timezone: unknown time zone {tz_name!r}")
    opens_at, closes_at = get.time("opens_at"), get.time("closes_at")
    if opens_at and closes_at and closes_at <= opens_at:
        errors.append("closes_at: must be after opens_at")
    candidates = _candidates(data.get("candidates"), errors)
    raw_ballot = data.get("ballot")
    ballot: dict[str, Any] = raw_ballot if isinstance(raw_ballot, dict) else {}
    if "ballot" in data and not isinstance(data["ballot"], dict):
        errors.append("ballot: must be a mapping")
    ballot_get = _Reader(ballot, errors, prefix="ballot.")
    lo = ballot_get.integer("min_selections", default=1)
    hi = ballot_get.integer("max_selections", default=1)
    if lo is not None and hi is not None:
        if lo < 1:
            errors.append("ballot.min_selections: must be at least 1")
        if hi < (lo or 1):
            errors.append("ballot.max_selections: must be at least ballot.min_selections")
        if candidates and hi > len(candidates):
            errors.append(f"ballot.max_selections: more than the {len(candidates)} candidates")
    top_n = get.integer("top_n", default=1)
    if top_n is not None and (top_n < 1 or (candidates and top_n > len(candidates))):
        errors.append("top_n: must be between 1 and the number of candidates")
    per_voter, period = _limit(data.get("limit"), errors)
    channels = _channels(data.get("channels"), errors)
    grace = _grace(data.get("kiosk_grace", "10m"), closes_at, errors)
    defenses = parse_defenses(data.get("defenses"), errors)
    for name in ("title", "organizer", "question"):
        get.text(name)
    if errors:
        raise CampaignInvalidError(errors)
    assert opens_at and closes_at and lo and hi and top_n  # guarded by the checks above
    return Campaign(
        id=cid,
        title=str(data["title"]),
        organizer=str(data["organizer"]),
        question=str(data["question"]),
        timezone=tz_name,
        opens_at=opens_at,
        closes_at=closes_at,
        top_n=top_n,
        min_selections=lo,
        max_selections=hi,
        per_voter=per_voter,
        period=period,
        channels=channels,
        kiosk_grace=grace,
        candidates=tuple(candidates),
        defenses=defenses,
    )


class _Reader:
    """Reads typed fields, recording an error per missing or ill-typed one."""

    def __init__(self, data: dict[str, Any], errors: list[str], prefix: str = "") -> None:
        self.data, self.errors, self.prefix = data, errors, prefix

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not value.strip():
            self.errors.append(f"{self.prefix}{name}: required text is missing")
            return ""
        return value

    def integer(self, name: str, default: int) -> int | None:
        value = self.data.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            self.errors.append(f"{self.prefix}{name}: must be a whole number")
            return None
        return value

    def time(self, name: str) -> datetime | None:
        value = self.data.get(name)
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self.errors.append(f"{name}: {value!r} is not an RFC 3339 time")
                return None
        else:
            self.errors.append(f"{name}: required RFC 3339 time is missing (or use --open-now)")
            return None
        if parsed.tzinfo is None:
            self.errors.append(f"{name}: needs a UTC offset")
            return None
        return parsed


def _candidates(raw: Any, errors: list[str]) -> list[Candidate]:
    if not isinstance(raw, list) or not raw:
        errors.append("candidates: a non-empty list is required")
        return []
    found: list[Candidate] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"candidates[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be a mapping with id, title and unit")
            continue
        reader = _Reader(item, errors, prefix=f"{where}.")
        cid, title, unit = reader.text("id"), reader.text("title"), reader.text("unit")
        if cid and not _ID.match(cid):
            errors.append(f"{where}.id: use lower-case letters, digits, '-' or '_'")
        if cid in seen:
            errors.append(f"{where}.id: {cid!r} appears twice")
        seen.add(cid)
        found.append(Candidate(cid, title, unit))
    return found


def _limit(raw: Any, errors: list[str]) -> tuple[int, Period]:
    if raw is None:
        return 1, "campaign"
    if not isinstance(raw, dict):
        errors.append("limit: must be a mapping with per_voter and period")
        return 1, "campaign"
    per_voter = raw.get("per_voter", 1)
    period = raw.get("period", "campaign")
    if not isinstance(per_voter, int) or isinstance(per_voter, bool) or per_voter < 1:
        errors.append("limit.per_voter: must be a whole number of at least 1")
        per_voter = 1
    if period not in ("campaign", "day"):
        errors.append("limit.period: must be 'campaign' or 'day'")
        period = "campaign"
    return per_voter, period


def _channels(raw: Any, errors: list[str]) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {name: {} for name in CHANNELS}
    if not isinstance(raw, dict) or not raw:
        errors.append(f"channels: a mapping of some of {', '.join(CHANNELS)}")
        return {}
    unknown = sorted(str(key) for key in set(raw) - set(CHANNELS))  # YAML keys: any type
    if unknown:
        errors.append(f"channels: unknown channel(s) {', '.join(unknown)}")
    found: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        settings = {} if value is None else value
        # flat: a channel's settings are its display name and the like, shown to anyone (and a
        # YAML alias bomb nested here would be expanded when the campaign is stored)
        if not isinstance(settings, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool)
            for k, v in settings.items()
        ):
            errors.append(f"channels.{name}: {CHANNEL_SETTINGS}")
        elif name in CHANNELS:
            found[name] = dict(settings)
    return found


def _grace(raw: Any, closes_at: datetime | None, errors: list[str]) -> timedelta:
    if not isinstance(raw, str):  # never str() it: a YAML alias bomb would be spelt out
        errors.append("kiosk_grace: a duration like 10m, 2h or 14d, as text")
        return timedelta(minutes=10)
    try:
        grace = parse_duration(raw)
        if closes_at is not None:
            closes_at + grace  # the cut-off: every service computes it, none may overflow
    except ValueError as exc:
        errors.append(f"kiosk_grace: {exc}")
    except OverflowError:
        errors.append("kiosk_grace: the close plus this grace is past the year 9999")
    else:
        return grace
    return timedelta(minutes=10)
