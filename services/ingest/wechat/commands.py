"""What a follower's text asks for: `投票 1 3 5` / `vote 1,3,5` / `vote c03`, `名单`, `结果`."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from services.domain.campaign import Campaign
from services.domain.errors import RuleError

_VOTE = re.compile(r"^(?:投票|vote(?![a-z]))\s*(.*)$", re.IGNORECASE | re.DOTALL)
_SEPARATORS = re.compile(r"[\s,、;]+")
_LIST = {"名单", "list", "候选", "候选名单"}
_RESULTS = {"结果", "results", "result", "排名"}


@dataclass(frozen=True)
class Vote:
    choices: tuple[str, ...]  # 1-based numbers as digits, or candidate ids


@dataclass(frozen=True)
class ListCandidates:
    pass


@dataclass(frozen=True)
class Results:
    pass


@dataclass(frozen=True)
class Help:
    pass


Command = Vote | ListCandidates | Results | Help


def parse_command(text: str) -> Command:
    # NFKC folds full-width digits, letters and commas (１，３) into their ASCII forms
    normal = unicodedata.normalize("NFKC", text).strip()
    vote = _VOTE.match(normal)
    if vote:
        choices = tuple(c.lower() for c in _SEPARATORS.split(vote.group(1)) if c)
        return Vote(choices) if choices else Help()
    word = normal.lower()
    if word in _LIST:
        return ListCandidates()
    if word in _RESULTS:
        return Results()
    return Help()


def selections_for(campaign: Campaign, vote: Vote) -> tuple[str, ...]:
    """Candidate ids for the numbers and ids the voter typed; the rules check the rest."""
    chosen = []
    for choice in vote.choices:
        if choice.isdigit():
            candidate = campaign.candidate_by_number(int(choice))
            if candidate is None:
                raise RuleError(f"no candidate number {choice}", code="unknown_candidate")
            chosen.append(candidate.id)
        else:
            chosen.append(choice)
    return tuple(chosen)
