"""A campaign's defences against vote stuffing (刷票): detection rules and velocity limits.

The optional `defenses:` section of a campaign file:

    defenses:
      rules:                       # omitted: the three built-in kinds, each `count`
        - {kind: identical_selections, window: 60s, min_ballots: 5, action: hold}
        - {kind: candidate_burst, window: 10s, baseline_windows: 6, factor: 3,
           min_votes: 20, action: count}
        - {name: fresh_phone_login, kind: fresh_voter, min_age: 10s, action: hold}
      velocity:                    # ballots a minute per key at ingest (429 beyond)
        ip_prefix: {per_minute: 60, burst: 20}
        device: {per_minute: 10, burst: 5}
        wechat_openid: {per_minute: 5, burst: 3}
        kiosk: {per_minute: 6, burst: 30}

Actions: `count` (count the ballot and record the detection), `hold` (store it, count it only
when an organiser releases it), `reject` (refuse it with reason `suspected_<rule>`).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast

Action = Literal["count", "hold", "reject"]
Kind = Literal["candidate_burst", "identical_selections", "fresh_voter"]
ACTIONS: tuple[Action, ...] = ("count", "hold", "reject")  # weakest first
KINDS: tuple[Kind, ...] = ("candidate_burst", "identical_selections", "fresh_voter")
VELOCITY_KEYS = ("ip_prefix", "device", "wechat_openid", "kiosk")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DURATION = re.compile(r"^(\d+)([smh])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}
# Per kind: its parameters and their defaults (durations as text, as in the file).
PARAMETERS: dict[Kind, dict[str, Any]] = {
    "candidate_burst": {"window": "10s", "baseline_windows": 6, "factor": 3, "min_votes": 20},
    "identical_selections": {"window": "60s", "min_ballots": 5},
    "fresh_voter": {"min_age": "10s"},
}


@dataclass(frozen=True)
class Rule:
    """One detection rule: `name` labels its detections and held ballots."""

    name: str
    kind: Kind
    action: Action
    params: tuple[tuple[str, Any], ...]  # the kind's parameters, durations as timedelta

    def param(self, key: str) -> Any:
        return dict(self.params)[key]

    def seconds(self, key: str) -> float:
        return float(cast(timedelta, self.param(key)).total_seconds())


@dataclass(frozen=True)
class VelocityLimit:
    per_minute: int
    burst: int


@dataclass(frozen=True)
class Defenses:
    rules: tuple[Rule, ...]
    velocity: tuple[tuple[str, VelocityLimit], ...]

    def limit(self, key: str) -> VelocityLimit | None:
        return dict(self.velocity).get(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [_rule_dict(r) for r in self.rules],
            "velocity": {
                k: {"per_minute": v.per_minute, "burst": v.burst} for k, v in self.velocity
            },
        }


def strongest(actions: list[Action]) -> Action:
    return max(actions, key=ACTIONS.index, default="count")


def parse_defenses(raw: Any, errors: list[str]) -> Defenses | None:
    """The section, or None when absent; each error appended, named `defenses.<where>`."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors.append("defenses: must be a mapping with rules and/or velocity")
        return None
    unknown = sorted(str(key) for key in set(raw) - {"rules", "velocity"})
    if unknown:
        errors.append(f"defenses: unknown key(s) {', '.join(unknown)}")
    raw_rules = raw.get("rules")
    if raw_rules is None:
        raw_rules = [{"kind": kind} for kind in KINDS]
    rules = _rules(raw_rules, errors)
    return Defenses(rules=tuple(rules), velocity=_velocity(raw.get("velocity"), errors))


def _rules(raw: Any, errors: list[str]) -> list[Rule]:
    if not isinstance(raw, list):
        errors.append("defenses.rules: must be a list of rules")
        return []
    rules: list[Rule] = []
    for i, item in enumerate(raw):
        rule = _rule(item, f"defenses.rules[{i}]", errors)
        if rule is not None and rule.name in {r.name for r in rules}:
            errors.append(f"defenses.rules[{i}].name: {rule.name!r} appears twice")
        elif rule is not None:
            rules.append(rule)
    return rules


def _rule(item: Any, where: str, errors: list[str]) -> Rule | None:
    if not isinstance(item, dict):
        errors.append(f"{where}: must be a mapping with kind and action")
        return None
    kind, action = item.get("kind"), item.get("action", "count")
    found = len(errors)
    if kind not in KINDS:
        errors.append(f"{where}.kind: must be one of {', '.join(KINDS)}")
        return None
    if action not in ACTIONS:
        errors.append(f"{where}.action: must be one of {', '.join(ACTIONS)}")
    name = item.get("name", kind)
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append(f"{where}.name: use 1-40 lower-case letters, digits or '_'")
    known = PARAMETERS[kind]
    unknown = sorted(str(key) for key in set(item) - set(known) - {"kind", "action", "name"})
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)} for {kind}")
    params = tuple((k, _param(item.get(k, d), d, f"{where}.{k}", errors)) for k, d in known.items())
    if len(errors) > found:
        return None
    return Rule(name=str(name), kind=kind, action=action, params=params)


def _param(value: Any, default: Any, where: str, errors: list[str]) -> Any:
    """Durations ('10s', '2m') become timedelta; numbers must be positive."""
    if isinstance(default, str):
        match = _DURATION.match(value.strip()) if isinstance(value, str) else None
        if match and int(match.group(1)) > 0:
            with contextlib.suppress(OverflowError):  # more days than a timedelta holds
                return timedelta(seconds=int(match.group(1)) * _SECONDS[match.group(2)])
        errors.append(f"{where}: {_shown(value)} is not a duration like 30s, 5m or 1h")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        errors.append(f"{where}: must be a positive number")
        return None
    return value


def _velocity(raw: Any, errors: list[str]) -> tuple[tuple[str, VelocityLimit], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        errors.append(f"defenses.velocity: a mapping of some of {', '.join(VELOCITY_KEYS)}")
        return ()
    limits: list[tuple[str, VelocityLimit]] = []
    for key, value in raw.items():
        where = f"defenses.velocity.{key}"
        if key not in VELOCITY_KEYS:
            errors.append(f"{where}: unknown key, use one of {', '.join(VELOCITY_KEYS)}")
            continue
        got = value if isinstance(value, dict) else {}
        per_minute: Any = got.get("per_minute")
        burst: Any = got.get("burst", per_minute)
        if not all(_whole(n) for n in (per_minute, burst)):
            errors.append(f"{where}: needs per_minute (and optional burst), whole numbers >= 1")
            continue
        limits.append((key, VelocityLimit(per_minute=per_minute, burst=burst)))
    return tuple(sorted(limits))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _rule_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rule.name, "kind": rule.kind, "action": rule.action}
    for key, value in rule.params:
        out[key] = f"{int(value.total_seconds())}s" if isinstance(value, timedelta) else value
    return out


def _shown(value: Any) -> str:
    """A refused value as an error names it: a scalar as written; a list or mapping by its
    kind only, since a YAML alias bomb spelt out would be gigabytes of text."""
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"
