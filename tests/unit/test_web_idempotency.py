"""A repeated ballot_id or Idempotency-Key answers the same 202 and publishes nothing new."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from services.domain.ballot import Ballot
from tests.unit.web_fakes import CountingSink, EmptyPool, bearer, voter_token, web_client

URL = "/v1/campaigns/demo/ballots"


async def cast(client: Any, sub: str = "alice", **request: Any) -> tuple[int, dict[str, Any]]:
    headers = {**bearer(voter_token(sub)), **request.pop("headers", {})}
    body = request.pop("json", {"selections": ["c01", "c02"]})
    response = await client.post(URL, json=body, headers=headers)
    return response.status, await response.json()


async def test_a_repeated_ballot_id_gets_the_first_answer_and_one_publish(tmp_path: Path) -> None:
    sink = CountingSink()
    ballot_id = str(uuid.uuid4())
    async with web_client(tmp_path, sink=sink) as client:
        first = await cast(client, json={"selections": ["c01"], "ballot_id": ballot_id})
        again = await cast(client, json={"selections": ["c01"], "ballot_id": ballot_id})
    assert first == again
    assert first[0] == 202 and first[1]["ballot_id"] == ballot_id
    assert [str(b.ballot_id) for b in sink.ballots] == [ballot_id]


async def test_a_repeated_idempotency_key_gets_the_first_answer_and_one_publish(
    tmp_path: Path,
) -> None:
    sink = CountingSink()
    key = {"Idempotency-Key": "order-2021-0001"}
    async with web_client(tmp_path, sink=sink) as client:
        first = await cast(client, headers=key)
        again = await cast(client, headers=key)
        other_voter = await cast(client, "bob", headers=key)
    assert first == again and first[0] == 202
    assert other_voter[0] == 202 and other_voter[1]["ballot_id"] != first[1]["ballot_id"]
    assert len(sink.ballots) == 2


async def test_a_uuid_idempotency_key_is_the_ballot_id(tmp_path: Path) -> None:
    key = str(uuid.uuid4())
    async with web_client(tmp_path) as client:
        status, answer = await cast(client, headers={"Idempotency-Key": key})
        same = await cast(
            client,
            headers={"Idempotency-Key": key},
            json={"selections": ["c01", "c02"], "ballot_id": key},
        )
        clash = await cast(
            client,
            headers={"Idempotency-Key": key},
            json={"selections": ["c01"], "ballot_id": str(uuid.uuid4())},
        )
    assert (status, answer["ballot_id"]) == (202, key)
    assert same == (status, answer)
    assert (clash[0], clash[1]["error"]["code"]) == (400, "idempotency_conflict")


async def test_an_oversized_idempotency_key_is_malformed(tmp_path: Path) -> None:
    async with web_client(tmp_path) as client:
        status, answer = await cast(client, headers={"Idempotency-Key": "k" * 256})
    assert (status, answer["error"]["code"]) == (400, "bad_idempotency_key")


async def test_another_voters_ballot_id_is_refused(tmp_path: Path) -> None:
    sink = CountingSink()
    ballot_id = str(uuid.uuid4())
    async with web_client(tmp_path, sink=sink) as client:
        await cast(client, "alice", json={"selections": ["c01"], "ballot_id": ballot_id})
        status, answer = await cast(
            client, "bob", json={"selections": ["c01"], "ballot_id": ballot_id}
        )
    assert (status, answer["error"]["code"], len(sink.ballots)) == (409, "ballot_id_taken", 1)


class SlowSink(CountingSink):
    """A broker that acknowledges only once two requests are in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def submit(self, ballot: Ballot) -> None:
        await self.release.wait()
        await super().submit(ballot)


async def test_a_retry_racing_its_original_publishes_nothing_new(tmp_path: Path) -> None:
    sink = SlowSink()
    body = {"selections": ["c03"], "ballot_id": str(uuid.uuid4())}
    async with web_client(tmp_path, sink=sink) as client:
        racing = [asyncio.create_task(cast(client, json=body)) for _ in range(3)]
        await asyncio.sleep(0)  # the three requests are on their way
        while not all(t.done() for t in racing) and not sink.release.is_set():
            await asyncio.sleep(0.01)  # until the first is inside the sink
            sink.release.set()
        answers = await asyncio.gather(*racing)
    assert answers[0] == answers[1] == answers[2] and answers[0][0] == 202
    assert len(sink.ballots) == 1


class TalliedPool(EmptyPool):
    """The database after the tally recorded a ballot that another ingest process took."""

    def __init__(self, ballot_id: str, voter_key: str, receipt: str) -> None:
        self.row = {"ballot_id": ballot_id, "voter_key": voter_key, "receipt": receipt}

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return self.row if str(args[0]) == self.row["ballot_id"] else None

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        wanted = {str(ballot_id) for ballot_id in args[0]}
        row = {**self.row, "ballot_id": uuid.UUID(self.row["ballot_id"])}
        return [row] if self.row["ballot_id"] in wanted else []


async def test_a_ballot_tallied_from_another_process_gets_its_first_answer(tmp_path: Path) -> None:
    first_sink = CountingSink()
    ballot_id = str(uuid.uuid4())
    body = {"selections": ["c01"], "ballot_id": ballot_id}
    async with web_client(tmp_path, sink=first_sink) as process_a:
        status, first = await cast(process_a, json=body)
    tallied = first_sink.ballots[0]
    pool = TalliedPool(ballot_id, tallied.voter_key, first["receipt"])
    second_sink = CountingSink()
    async with web_client(tmp_path, sink=second_sink, pool=pool) as process_b:
        assert await cast(process_b, json=body) == (status, first)
    assert second_sink.ballots == []
