"""The WeChat official account channel through the running system, as WeChat's servers use it.

A second ingest process shares the system's Kafka and Postgres (as a scaled-out deployment
does) and talks to a local fake of the WeChat API for OAuth.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import jwt
import pytest

from tests.support.fake_wechat import (
    FakeWeChat,
    WeChatPeer,
    another_ingest,
    made_up_openid,
    running_fake_wechat,
)
from tests.support.system import System
from tests.support.waiting import eventually

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def fake_api(system: System) -> Iterator[FakeWeChat]:
    with running_fake_wechat(
        system.secret("wechat_appid"), system.secret("wechat_appsecret")
    ) as fake:
        yield fake


@pytest.fixture(scope="module")
def second_ingest(system: System, fake_api: FakeWeChat) -> Iterator[str]:
    """Another ingest process on the same Kafka and Postgres, with the fake WeChat API."""
    with another_ingest(system, VOTESTREAM_WECHAT_API_BASE=fake_api.base) as base:
        yield base


def _results(system: System, cid: str) -> dict[str, Any] | None:
    response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
    return response.json() if response.status_code == 200 else None


def test_the_url_check_echoes_only_for_our_signature(peer: WeChatPeer) -> None:
    query = peer.query()
    ok = httpx.get(f"{peer.base}/wechat", params={**query, "echostr": "e1729"}, timeout=5)
    assert (ok.status_code, ok.text) == (200, "e1729")
    forged = {**query, "signature": "0" * 40, "echostr": "e1729"}
    assert httpx.get(f"{peer.base}/wechat", params=forged, timeout=5).status_code == 403
    stale = {**query, "timestamp": "1714036504", "echostr": "e1729"}
    assert httpx.get(f"{peer.base}/wechat", params=stale, timeout=5).status_code == 403


def test_follow_scan_vote_and_three_retries_count_one_ballot(
    system: System, peer: WeChatPeer, second_ingest: str
) -> None:
    campaign = system.new_campaign()
    cid, openid, msg_id = campaign["id"], made_up_openid(), secrets.randbelow(10**18)
    peer.join(openid, cid)
    vote = peer.text(openid, "投票 1 3 5", msg_id)
    query, body = peer.request(vote, safe=True)
    first = peer.reply(peer.post(query, body), safe=True)
    ballot_id = UUID.search(first)
    assert ballot_id is not None, first
    resealed = peer.request(vote, safe=True, like=query)
    assert resealed[1] != body and resealed[0]["timestamp"] == query["timestamp"]
    retries = [  # WeChat's identical retries on either process, the same message sealed
        # again under the same timestamp and nonce, and the MsgId under a new query
        peer.reply(peer.post(query, body), safe=True),
        peer.reply(peer.post(query, body, base=second_ingest), safe=True),
        peer.reply(peer.post(*resealed), safe=True),
        peer.reply(peer.push(vote, safe=True, base=second_ingest), safe=True),
    ]
    assert retries == [first] * 4

    def counted() -> dict[str, Any] | None:
        snapshot = _results(system, cid)
        return snapshot if snapshot and snapshot["ballots_counted"] >= 1 else None

    snapshot = eventually(counted, timeout=60, what="the WeChat ballot counted")
    assert snapshot["ballots_counted"] == 1 and snapshot["ballots_rejected"] == {}
    votes = {c["id"]: c["by_channel"]["wechat"] for c in snapshot["candidates"]}
    assert votes == {c["id"]: int(c["id"] in ("c01", "c03", "c05")) for c in campaign["candidates"]}
    fate = httpx.get(f"{system.ingest}/v1/ballots/{ballot_id.group()}", timeout=5).json()
    assert fate["status"] == "counted"
    standings = peer.reply(peer.push(peer.text(openid, "结果", msg_id + 1), safe=True), safe=True)
    assert campaign["title"] in standings and "1 票" in standings
    assert asyncio.run(_rows_naming(system, openid)) == 0


async def _rows_naming(system: System, text: str) -> int:
    """How many rows of the tables the WeChat channel writes contain `text` anywhere."""
    conn = await asyncpg.connect(
        f"postgresql://votestream@127.0.0.1:{system.ports['PG']}/votestream"
    )
    try:
        found = 0
        for table in (
            "wechat_messages",
            "wechat_sessions",
            "wechat_nonces",
            "ballots",
            "snapshots",
        ):
            query = f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'"
            found += await conn.fetchval(query, text)
        found += await conn.fetchval(  # the outbox keeps the ballot record as bytes
            "SELECT count(*) FROM wechat_messages"
            " WHERE position(convert_to($1, 'UTF8') in coalesce(ballot, ''::bytea)) > 0",
            text,
        )
        return found
    finally:
        await conn.close()


def test_list_and_help_in_safe_mode_through_wechatpy(system: System, peer: WeChatPeer) -> None:
    campaign = system.new_campaign()
    openid, msg_id = made_up_openid(), secrets.randbelow(10**18)
    peer.join(openid, campaign["id"])
    listing = peer.reply(peer.push(peer.text(openid, "名单", msg_id), safe=True), safe=True)
    assert f"25. {campaign['candidates'][24]['title']}" in listing
    help_text = peer.reply(peer.push(peer.text(openid, "hello", msg_id + 1), safe=True), safe=True)
    assert "投票 1 3 5" in help_text


def test_hostile_bodies_get_400_or_403_and_never_a_ballot(system: System, peer: WeChatPeer) -> None:
    campaign = system.new_campaign()
    cid, openid = campaign["id"], made_up_openid()
    peer.join(openid, cid)
    vote = peer.text(openid, "投票 2", secrets.randbelow(10**18))
    entities = '<!DOCTYPE xml [<!ENTITY a "投票 2"><!ENTITY b "&a;&a;&a;&a;">]>'
    hostile = [
        (vote.replace("<Content>", "<Content>&b;"), entities),
        (vote, '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/hostname">]>'),
        (vote.replace("投票 2", "投票 2" + " " * 40_000), ""),
        (vote[:-10], ""),
        ("\x00\xff garbage", ""),
    ]
    for body, doctype in hostile:  # sealed as WeChat would: what is inside is hostile
        response = peer.post(*peer.request(doctype + body, safe=True))
        assert response.status_code in (400, 413), response.text
    query, sealed_vote = peer.request(vote, safe=True)
    forged = {**query, "signature": "f" * 40}
    assert peer.post(forged, sealed_vote).status_code == 403
    bad_msg_signature = {**peer.query(), "encrypt_type": "aes", "msg_signature": "0" * 40}
    sealed = "<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>"
    response = httpx.post(
        f"{peer.base}/wechat", params=bad_msg_signature, content=sealed, timeout=5
    )
    assert response.status_code == 403
    # sealed with our token and key but for another account's appid: msg_signature holds,
    # the appid inside does not
    elsewhere = WeChatPeer(peer.base, peer.token, "wx" + "0" * 16, system.secret("wechat_aes_key"))
    response = elsewhere.post(*elsewhere.request(vote, safe=True))
    assert (response.status_code, response.json()["error"]["code"]) == (
        400,
        "bad_wechat_ciphertext",
    )
    # the same voter's one valid vote is counted: nothing before it used their limit
    accepted = UUID.search(
        peer.reply(
            peer.push(peer.text(openid, "vote 2", 1 + secrets.randbelow(10**18)), safe=True),
            safe=True,
        )
    )
    assert accepted is not None
    eventually(
        lambda: (_results(system, cid) or {}).get("ballots_counted") == 1,
        timeout=60,
        what="the one valid ballot counted",
    )
    fate = httpx.get(f"{system.ingest}/v1/ballots/{accepted.group()}", timeout=5).json()
    assert fate["status"] == "counted"
    assert _results(system, cid)["ballots_rejected"] == {}  # type: ignore[index]


def test_oauth_starts_a_wechat_session_with_the_text_channels_voter_key(
    system: System, peer: WeChatPeer, fake_api: FakeWeChat, second_ingest: str
) -> None:
    campaign = system.new_campaign()
    cid, openid = campaign["id"], made_up_openid()
    known = f"{second_ingest}/v1/campaigns/{cid}"  # its campaign cache refreshes every second
    eventually(lambda: httpx.get(known, timeout=5).status_code == 200, what="campaign known")
    callback = f"{second_ingest}/wechat/oauth/callback"
    response = httpx.get(
        callback, params={"code": fake_api.issue(openid), "state": cid}, timeout=10
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"/vote/{cid}#token=") and openid not in location
    token = parse_qs(urlsplit(location).fragment)["token"][0]
    assert openid not in str(jwt.decode(token, options={"verify_signature": False}))
    web_vote = httpx.post(
        f"{system.ingest}/v1/campaigns/{cid}/ballots",
        json={"selections": ["c07"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert web_vote.status_code == 202, web_vote.text
    eventually(lambda: (_results(system, cid) or {}).get("ballots_counted") == 1, timeout=60)
    peer.join(openid, cid)
    text_vote = UUID.search(
        peer.reply(
            peer.push(peer.text(openid, "投票 8", secrets.randbelow(10**18)), safe=True), safe=True
        )
    )
    assert text_vote is not None

    def fate() -> dict[str, Any] | None:
        answer = httpx.get(f"{system.ingest}/v1/ballots/{text_vote.group()}", timeout=5).json()
        return answer if answer.get("status") == "rejected" else None

    assert eventually(fate, timeout=60, what="the text vote judged")["reason"] == "limit_exceeded"
    snapshot = _results(system, cid)
    assert snapshot is not None
    assert {c["id"]: c["by_channel"]["wechat"] for c in snapshot["candidates"]}["c07"] == 1


@pytest.mark.parametrize(
    ("make_code", "status", "code"),
    [
        (lambda fake: "no-such-code", 401, "wechat_oauth_failed"),
        (lambda fake: fake.issue("o-snap", snapshot=True), 403, "wechat_snapshot_user"),
    ],
    ids=["40029", "snapshot-user"],
)
def test_oauth_refusals(
    system: System, fake_api: FakeWeChat, second_ingest: str, make_code: Any, status: int, code: str
) -> None:
    params = {"code": make_code(fake_api), "state": "zibo-2021-b2"}
    response = httpx.get(f"{second_ingest}/wechat/oauth/callback", params=params, timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_a_used_oauth_code_is_refused(fake_api: FakeWeChat, second_ingest: str) -> None:
    params = {"code": fake_api.issue(made_up_openid()), "state": "zibo-2021-b2"}
    callback = f"{second_ingest}/wechat/oauth/callback"
    assert httpx.get(callback, params=params, timeout=10).status_code == 302
    again = httpx.get(callback, params=params, timeout=10)
    assert again.status_code == 401 and "40163" in again.json()["error"]["message"]


def test_each_campaign_has_a_qr_code_for_the_account(system: System) -> None:
    response = httpx.get(f"{system.ingest}/wechat/qr/zibo-2021-b2.svg", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert response.text.lstrip().startswith("<svg")
    assert httpx.get(f"{system.ingest}/wechat/qr/nope.svg", timeout=5).status_code == 404
