"""Forged WeChat pushes against the running system: copied queries, plaintext bodies, MsgIds.

WeChat's query signature covers the token, timestamp and nonce, never the body, so a copy of
one real push's query is what a stuffer tries first. The system runs in safe mode (it has an
EncodingAESKey); a second ingest process on the same Kafka and Postgres has no key, as an
account in plaintext mode runs, so the nonce check is seen on its own there.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.ingest.wechat.keys import sender_key
from tests.support.fake_wechat import WeChatPeer, another_ingest, made_up_openid
from tests.support.system import REPO, System
from tests.support.waiting import eventually

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def plaintext_ingest(system: System) -> Iterator[str]:
    """An ingest process without an EncodingAESKey: it takes plaintext pushes."""
    with another_ingest(system, VOTESTREAM_WECHAT_AES_KEY="") as base:
        yield base


def _counted(system: System, cid: str) -> dict[str, Any]:
    response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
    return response.json() if response.status_code == 200 else {"ballots_counted": 0}


def _published(system: System, cid: str, *, at_least: int) -> dict[str, Any]:
    """The first snapshot that counts `at_least` ballots (a count lands in the next snapshot,
    not at once); the caller then checks it holds nothing more."""
    return eventually(
        lambda: (found := _counted(system, cid))["ballots_counted"] >= at_least and found,
        timeout=30,
        what=f"a snapshot counting {at_least}",
    )


def _receipt(peer: WeChatPeer, response: httpx.Response, *, safe: bool) -> str:
    found = UUID.search(peer.reply(response, safe=safe))
    assert found is not None, response.text
    return found.group()


def _fate(system: System, ballot_id: str) -> str:
    answer = httpx.get(f"{system.ingest}/v1/ballots/{ballot_id}", timeout=5).json()
    return str(answer.get("status"))


def _refused(response: httpx.Response, code: str) -> bool:
    return response.status_code == 403 and response.json()["error"]["code"] == code


async def _message_rows_of(system: System, openids: list[str]) -> int:
    """WeChat message rows keyed by any of these senders (their keys hold the pseudonym)."""
    identity = system.secret("identity_key").encode()
    conn = await asyncpg.connect(
        f"postgresql://votestream@127.0.0.1:{system.ports['PG']}/votestream"
    )
    try:
        found = 0
        for openid in openids:
            pseudonym = sender_key(identity, openid)
            query = "SELECT count(*) FROM wechat_messages WHERE position($1 in message_key) > 0"
            found += await conn.fetchval(query, pseudonym)
        return found
    finally:
        await conn.close()


def _forged(peer: WeChatPeer, openid: str, cid: str) -> tuple[str, str]:
    """A made-up follower's SCAN of the campaign (so a vote would land there) and vote."""
    return peer.event(openid, "SCAN", cid), peer.text(openid, "投票 2", secrets.randbelow(10**18))


def test_plaintext_under_a_copied_query_is_refused_and_counts_nothing(
    system: System, peer: WeChatPeer
) -> None:
    campaign = system.new_campaign()
    cid, real = campaign["id"], made_up_openid()
    peer.join(real, cid)
    query, body = peer.request(peer.text(real, "投票 1", secrets.randbelow(10**18)), safe=True)
    ballot_id = _receipt(peer, peer.post(query, body), safe=True)
    stripped = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
    forgers = [made_up_openid() for _ in range(5)]
    for openid in forgers:
        for xml in _forged(peer, openid, cid):
            assert _refused(peer.post(stripped, xml.encode()), "wechat_safe_mode_only")
            assert _refused(peer.post(query, xml.encode()), "bad_wechat_signature")
            # nor with a query of its own, validly signed: the body is what nobody signed
            assert _refused(peer.push(xml), "wechat_safe_mode_only")
    assert asyncio.run(_message_rows_of(system, forgers)) == 0
    eventually(lambda: _fate(system, ballot_id) == "counted", timeout=60, what="the real vote")
    snapshot = _published(system, cid, at_least=1)
    assert snapshot["ballots_counted"] == 1
    assert {c["id"]: c["votes"] for c in snapshot["candidates"] if c["votes"]} == {"c01": 1}


def test_a_forged_msg_id_takes_neither_a_followers_reply_nor_his_ballot(
    system: System, peer: WeChatPeer
) -> None:
    campaign = system.new_campaign()
    cid, forger = campaign["id"], made_up_openid()
    first, second = made_up_openid(), made_up_openid()
    for openid in (forger, first, second):
        peer.join(openid, cid)
    # the forger sends first with the MsgId a follower's next message will carry...
    early = secrets.randbelow(10**18)
    forged = _receipt(peer, peer.push(peer.text(forger, "投票 3", early), safe=True), safe=True)
    real = _receipt(peer, peer.push(peer.text(first, "投票 4", early), safe=True), safe=True)
    assert real != forged
    # ...or copies the MsgId of a message a follower has sent: no reply of his comes back
    late = secrets.randbelow(10**18)
    other = _receipt(peer, peer.push(peer.text(second, "投票 5", late), safe=True), safe=True)
    copied = peer.reply(peer.push(peer.text(forger, "投票 6", late), safe=True), safe=True)
    assert other not in copied
    for ballot_id in (forged, real, other):  # the forger's first is a ballot of his own
        eventually(lambda b=ballot_id: _fate(system, b) != "pending", timeout=60, what="judged")
        assert _fate(system, ballot_id) == "counted"
    votes = {c["id"]: c["votes"] for c in _published(system, cid, at_least=3)["candidates"]}
    assert (votes["c03"], votes["c04"], votes["c05"]) == (1, 1, 1)


def test_a_copied_query_under_another_body_is_refused_and_the_identical_retry_answered(
    system: System, peer: WeChatPeer, plaintext_ingest: str
) -> None:
    campaign = system.new_campaign()
    cid, real = campaign["id"], made_up_openid()
    known = f"{plaintext_ingest}/v1/campaigns/{cid}"
    eventually(lambda: httpx.get(known, timeout=5).status_code == 200, what="campaign known")
    peer.join(real, cid)
    query, body = peer.request(peer.text(real, "投票 7", secrets.randbelow(10**18)))
    first = peer.post(query, body, base=plaintext_ingest)
    ballot_id = _receipt(peer, first, safe=False)
    for _ in range(3):  # WeChat's retries: the same request, the same reply
        assert peer.reply(peer.post(query, body, base=plaintext_ingest)) == peer.reply(first)
    forgers = [made_up_openid() for _ in range(3)]
    bodies = [xml for openid in forgers for xml in _forged(peer, openid, cid)]
    bodies.append(peer.text(real, "投票 8", secrets.randbelow(10**18)))  # his name, new MsgId
    for xml in bodies:
        response = peer.post(query, xml.encode(), base=plaintext_ingest)
        assert _refused(response, "wechat_replayed_query"), response.text
    assert asyncio.run(_message_rows_of(system, forgers)) == 0
    eventually(lambda: _fate(system, ballot_id) == "counted", timeout=60, what="the real vote")
    snapshot = _published(system, cid, at_least=1)
    assert snapshot["ballots_counted"] == 1
    assert {c["id"]: c["votes"] for c in snapshot["candidates"] if c["votes"]} == {"c07": 1}


@pytest.mark.parametrize("mode", ["safe", "plaintext"])
def test_forged_wechat_stuffers_beside_real_voters_add_no_ballot(
    system: System, plaintext_ingest: str, tmp_path: Path, mode: str
) -> None:
    campaign = system.new_campaign()
    cid = campaign["id"]
    env, ingest = system.env, system.ingest
    if mode == "plaintext":
        env, ingest = {**env, "VOTESTREAM_WECHAT_AES_KEY": ""}, plaintext_ingest
        known = f"{ingest}/v1/campaigns/{cid}"
        eventually(lambda: httpx.get(known, timeout=5).status_code == 200, what="campaign known")
    out = tmp_path / "summary.json"
    argv = [sys.executable, "-m", "services", "loadgen", "--campaign", cid, "--quiet"]
    argv += ["--target-ingest", ingest, "--channels", "wechat", "--rate", "30"]
    argv += ["--duration", "4s", "--stuffers", "forged-wechat", "--stuff-rate", "20"]
    argv += ["--duplicate-rate", "0.2", "--invalid-rate", "0", "--json", str(out)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, cwd=REPO)
    summary = json.loads(out.read_text()) if out.exists() else {}
    assert done.returncode == 0, done.stdout + done.stderr
    stuffed = summary["stuffers"]["forged-wechat"]
    assert stuffed["sent"] >= 40 and stuffed["taken"] == 0 and stuffed["errors"] == 0
    assert stuffed["refused"] == stuffed["sent"], stuffed
    expected_code = "wechat_replayed_query" if mode == "plaintext" else "wechat_safe_mode_only"
    assert stuffed["refused_by"].get(expected_code, 0) >= stuffed["sent"] // 4, stuffed
    # the published count is exactly the real voters' count, which the loadgen kept itself
    real = summary["expected_counted"]
    assert real > 0 and summary["published_counted"] == real and summary["differences"] == []
    assert _counted(system, cid)["ballots_counted"] == real
