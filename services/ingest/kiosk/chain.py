"""Each device's batches form a hash chain: seq counts 1, 2, 3 ... and prev_hash is the hex
SHA-256 of the previous batch's body. Gaps and forks are reported, never silently absorbed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.domain.errors import ConflictError

BreakKind = Literal["gap", "fork"]


@dataclass(frozen=True)
class ChainState:
    """What the server last accepted from a device (nothing yet: None, None)."""

    last_seq: int | None
    last_hash: str | None

    @property
    def next_seq(self) -> int:
        return (self.last_seq or 0) + 1


@dataclass(frozen=True)
class ChainBreak:
    kind: BreakKind
    seq: int
    expected_seq: int
    detail: str


class StaleSeqError(ConflictError):
    """A new batch whose seq the device has used already: a second history, refused."""

    code = "stale_seq"

    def __init__(self, chain_break: ChainBreak) -> None:
        super().__init__(chain_break.detail)
        self.chain_break = chain_break


def check_chain(state: ChainState, seq: int, prev_hash: str | None) -> list[ChainBreak]:
    """The breaks this batch reveals; raises StaleSeqError if its seq is not new."""
    expected = state.next_seq
    if seq < expected:
        detail = f"seq {seq} was used already; the next is {expected}"
        raise StaleSeqError(ChainBreak("fork", seq, expected, detail))
    if seq > expected:
        return [ChainBreak("gap", seq, expected, f"seq {expected}..{seq - 1} never arrived")]
    if state.last_hash is not None and prev_hash is None:
        # A batch that names no predecessor cannot be checked: as suspect as a wrong one,
        # or leaving the field out would be how a cloned key hides a second history.
        detail = "prev_hash missing: the batch does not say which batch it follows"
        return [ChainBreak("fork", seq, expected, detail)]
    if prev_hash is not None and prev_hash != state.last_hash:
        detail = "prev_hash differs from the hash of the last accepted batch"
        return [ChainBreak("fork", seq, expected, detail)]
    return []
