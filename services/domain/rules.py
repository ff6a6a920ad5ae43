"""The ballot rules of the campaign, as pure functions.

Ingest checks what it can without state (`check_ballot`); the tally decides every ballot's
fate with the voter's usage so far (`decide`), so both places apply one set of rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from services.domain.ballot import Ballot, Fate
from services.domain.campaign import Campaign
from services.domain.errors import ConflictError, RuleError, VotestreamError


def check_selections(campaign: Campaign, selections: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(selections)
    if len(set(chosen)) != len(chosen):
        raise RuleError("a candidate is selected twice", code="duplicate_selection")
    unknown = [s for s in chosen if s not in campaign.candidate_ids]
    if unknown:
        raise RuleError(f"unknown candidate {unknown[0]!r}", code="unknown_candidate")
    if len(chosen) > campaign.max_selections:
        raise RuleError(f"at most {campaign.max_selections} selections", code="too_many_selections")
    if len(chosen) < campaign.min_selections:
        raise RuleError(f"at least {campaign.min_selections} selections", code="too_few_selections")
    return chosen


def check_window(
    campaign: Campaign, channel: str, cast_at: datetime, received_at: datetime
) -> None:
    """Inside the voting window; kiosks may upload until close + kiosk_grace."""
    if cast_at < campaign.opens_at:
        raise ConflictError("the campaign is not open yet", code="campaign_not_open")
    if cast_at >= campaign.closes_at:
        raise ConflictError("the campaign is closed", code="campaign_closed")
    deadline = campaign.cutoff if channel == "kiosk" else campaign.closes_at
    if received_at >= deadline:
        raise ConflictError("the campaign is closed", code="campaign_closed")
    if channel not in campaign.channels:
        raise ConflictError(f"this campaign takes no {channel} ballots", code="channel_closed")


def check_ballot(campaign: Campaign, ballot: Ballot) -> None:
    """Every rule that needs no voter history; raises the error the API returns."""
    check_selections(campaign, ballot.selections)
    check_window(campaign, ballot.channel, ballot.cast_at, ballot.received_at)


def period_of(campaign: Campaign, ballot: Ballot) -> str:
    """The voter-limit bucket: the whole campaign, or the cast day in the campaign's zone."""
    if campaign.period == "day":
        return ballot.cast_at.astimezone(campaign.tz).date().isoformat()
    return "campaign"


def decide(
    campaign: Campaign | None,
    ballot: Ballot,
    used: Mapping[tuple[str, str], int],
    cut_off: bool = False,
) -> Fate:
    """The fate of one ballot given how many counted ballots its voter has in the period.

    `cut_off` is true once the campaign's cut-off marker has passed on this ballot's partition:
    anything behind the marker missed the final and is refused.
    """
    if campaign is None:
        return Fate(ballot, "rejected", "unknown_campaign", "campaign")
    period = period_of(campaign, ballot)
    if cut_off:
        return Fate(ballot, "rejected", "campaign_closed", period)
    try:
        check_ballot(campaign, ballot)
    except VotestreamError as exc:
        return Fate(ballot, "rejected", exc.code, period)
    if used.get((ballot.voter_key, period), 0) >= campaign.per_voter:
        return Fate(ballot, "rejected", "limit_exceeded", period)
    return Fate(ballot, "counted", None, period)
