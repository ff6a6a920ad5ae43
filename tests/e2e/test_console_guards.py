"""The organiser console refuses what an attacker with curl would try: no page without a
session, no change without the session's CSRF token or from another site, no expired or
signed-out session, no guessed token; and every action lands in the append-only audit."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support.system import DEMO, System

PAGES = ["/admin/", "/admin/kiosks", "/admin/campaigns/new", "/admin/campaigns/{cid}",
         "/admin/campaigns/{cid}/held", "/admin/campaigns/{cid}/results",
         "/admin/campaigns/{cid}/history",
         "/admin/campaigns/{cid}/snapshots/latest.csv"]  # fmt: skip


OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


@pytest.fixture
async def db(system: System) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(
        f"postgresql://votestream@127.0.0.1:{system.ports['PG']}/votestream"
    )
    yield conn
    await conn.close()


def signed_in(system: System, organiser: str = "王芳") -> tuple[httpx.Client, str]:
    """A client holding a console session, and the session's CSRF token."""
    client = httpx.Client(base_url=system.ingest, timeout=10)
    OPEN.append(client)
    answer = client.post(
        "/admin/sign-in", data={"organiser": organiser, "token": system.secret("admin_token")}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
    page = client.get("/admin/").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client, csrf


def closes_at(system: System, cid: str) -> Any:
    return httpx.get(f"{system.ingest}/v1/campaigns/{cid}", timeout=5).json()["closes_at"]


def test_no_page_answers_without_a_session(system: System) -> None:
    cid = system.new_campaign()["id"]
    with httpx.Client(base_url=system.ingest, timeout=10) as client:
        for path in PAGES:
            answer = client.get(path.format(cid=cid))
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/admin/sign-in"), path
        assert client.get(f"/admin/campaigns/{cid}/live.json").status_code == 401


def test_a_guessed_token_is_refused(system: System) -> None:
    answer = httpx.post(
        f"{system.ingest}/admin/sign-in", data={"organiser": "x", "token": "guess"}, timeout=10
    )
    assert answer.status_code == 401 and "votestream_console" not in answer.cookies


def test_the_cookie_is_http_only_and_strictly_same_site(system: System) -> None:
    answer = httpx.post(
        f"{system.ingest}/admin/sign-in",
        data={"organiser": "x", "token": system.secret("admin_token")},
        timeout=10,
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
    assert "max-age=" in cookie


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["no-csrf-token", "foreign-origin", "cross-site-fetch"],
)
def test_a_change_without_its_csrf_token_or_from_another_site_changes_nothing(
    system: System, headers: dict[str, str]
) -> None:
    cid = system.new_campaign()["id"]
    before = closes_at(system, cid)
    client, csrf = signed_in(system)
    data = {} if not headers else {"csrf": csrf}
    answer = client.post(f"/admin/campaigns/{cid}/close", data=data, headers=headers)
    assert answer.status_code == 403
    assert closes_at(system, cid) == before


def test_with_its_csrf_token_the_same_change_is_made_and_audited(system: System) -> None:
    cid = system.new_campaign()["id"]
    before = closes_at(system, cid)
    client, csrf = signed_in(system, organiser="审计员")
    answer = client.post(f"/admin/campaigns/{cid}/close", data={"csrf": csrf})
    assert answer.status_code == 303
    assert closes_at(system, cid) < before
    history = httpx.get(
        f"{system.ingest}/v1/admin/campaigns/{cid}/history",
        headers=system.admin_headers(),
        timeout=5,
    ).json()
    assert history["history"][-1]["actor"] == "console:审计员"


async def test_an_expired_session_goes_back_to_sign_in(
    system: System, db: asyncpg.Connection
) -> None:
    client, csrf = signed_in(system, organiser="过期")
    await db.execute(
        "UPDATE console_sessions SET expires_at = now() - interval '1 second'"
        " WHERE organiser = '过期'"
    )
    answer = client.get("/admin/")
    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/sign-in?expired=1")
    assert client.post("/admin/sign-out", data={"csrf": csrf}).status_code == 401


async def test_signing_out_ends_the_session_and_every_action_is_audited(
    system: System, db: asyncpg.Connection
) -> None:
    client, csrf = signed_in(system, organiser="赵六")
    assert client.post("/admin/sign-out", data={"csrf": csrf}).status_code == 303
    assert client.get("/admin/").status_code == 303
    actions = await db.fetch(
        "SELECT action FROM console_audit WHERE organiser = '赵六' ORDER BY seq"
    )
    assert [a["action"] for a in actions] == ["sign_in", "sign_out"]
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("DELETE FROM console_audit WHERE organiser = '赵六'")


def test_a_kiosk_is_registered_listed_and_revoked_with_a_bad_key_refused(system: System) -> None:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    device = f"hall-{uuid.uuid4().hex[:6]}"
    client, csrf = signed_in(system, organiser="终端管理员")
    bad = client.post("/admin/kiosks", data={"csrf": csrf, "device_id": device, "public_key": "x"})
    assert bad.status_code == 400 and "base64" in bad.text
    data = {"csrf": csrf, "device_id": device, "public_key": base64.b64encode(key).decode()}
    assert client.post("/admin/kiosks", data=data).status_code == 303
    listed = client.get("/admin/kiosks").text
    assert f'data-device="{device}"' in listed

    assert client.post(f"/admin/kiosks/{device}/revoke", data={"csrf": csrf}).status_code == 303
    devices = httpx.get(
        f"{system.ingest}/v1/admin/kiosks", headers=system.admin_headers(), timeout=5
    ).json()["kiosks"]
    assert [d["revoked"] for d in devices if d["device_id"] == device] == [True]


def test_a_campaign_file_is_uploaded_and_a_bad_one_is_refused_naming_its_errors(
    system: System,
) -> None:
    cid = f"upload-{uuid.uuid4().hex[:6]}"
    text = DEMO.read_text(encoding="utf-8").replace("id: zibo-2021-b2", f"id: {cid}", 1)
    text += "opens_at: 2031-05-01T09:00:00+08:00\ncloses_at: 2031-05-08T18:00:00+08:00\n"
    client, csrf = signed_in(system, organiser="上传者")
    bad = text.replace("max_selections: 10", "max_selections: 99")
    refused = client.post(
        "/admin/campaigns/upload", data={"csrf": csrf}, files={"file": ("c.yaml", bad.encode())}
    )
    assert refused.status_code == 422 and 'data-error-for="max_selections"' in refused.text
    assert httpx.get(f"{system.ingest}/v1/campaigns/{cid}", timeout=5).status_code == 404

    taken = client.post(
        "/admin/campaigns/upload", data={"csrf": csrf}, files={"file": ("c.yaml", text.encode())}
    )
    assert taken.status_code == 303
    stored = httpx.get(f"{system.ingest}/v1/campaigns/{cid}", timeout=5).json()
    opens_at = datetime.fromisoformat(stored["opens_at"])
    assert opens_at == datetime(2031, 5, 1, 1, tzinfo=UTC) and len(stored["candidates"]) == 25


def test_a_campaign_is_extended_and_never_into_the_past(system: System) -> None:
    opened = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    campaign = system.new_campaign(opens_at=opened.isoformat())
    cid, before = campaign["id"], datetime.fromisoformat(campaign["closes_at"])
    client, csrf = signed_in(system, organiser="延长者")
    local = ZoneInfo(campaign["timezone"])
    later = (before + timedelta(days=2)).astimezone(local).strftime("%Y-%m-%dT%H:%M")
    answer = client.post(f"/admin/campaigns/{cid}/extend", data={"csrf": csrf, "closes_at": later})
    assert answer.status_code == 303
    extended = datetime.fromisoformat(closes_at(system, cid))
    assert extended.astimezone(local).strftime("%Y-%m-%dT%H:%M") == later

    past = (datetime.now(UTC) - timedelta(hours=1)).astimezone(local).strftime("%Y-%m-%dT%H:%M")
    refused = client.post(f"/admin/campaigns/{cid}/extend", data={"csrf": csrf, "closes_at": past})
    assert refused.status_code == 409 and "past" in refused.text
    assert datetime.fromisoformat(closes_at(system, cid)) == extended


async def test_the_edit_form_says_the_rules_are_locked_once_a_ballot_is_held(
    system: System, db: asyncpg.Connection
) -> None:
    """A held ballot took its voter's place under the rules, so the store refuses a rules
    change: the form must say so before the organiser tries, as it does for a counted one."""
    cid = system.new_campaign()["id"]
    client, _ = signed_in(system, organiser="规则")
    assert 'id="locked"' not in client.get(f"/admin/campaigns/{cid}/edit").text
    await db.execute(
        "INSERT INTO ballots (ballot_id, campaign_id, channel, voter_key, selections, cast_at,"
        " received_at, status, period, source_partition, source_offset, receipt)"
        " VALUES ($1, $2, 'web', 'held-voter', '{}', now(), now(), 'held', 'campaign', 0, 0, '')",
        uuid.uuid4(),
        cid,
    )
    assert 'id="locked"' in client.get(f"/admin/campaigns/{cid}/edit").text


def test_a_refusal_is_a_console_page_not_the_apis_json(system: System) -> None:
    client, csrf = signed_in(system, organiser="迷路")
    for answer in (
        client.get("/admin/campaigns/no-such-campaign"),
        client.post("/admin/campaigns/no-such-campaign/close", data={"csrf": csrf}),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html"), answer.text
        assert 'id="problem"' in answer.text and "no-such-campaign" in answer.text
    assert client.get("/admin/campaigns/no-such-campaign/live.json").status_code == 404


def test_an_extension_with_its_own_utc_offset_keeps_it(system: System) -> None:
    campaign = system.new_campaign()
    cid, before = campaign["id"], datetime.fromisoformat(campaign["closes_at"])
    client, csrf = signed_in(system, organiser="延长者")
    later = (before + timedelta(days=1)).astimezone(UTC).replace(second=0)
    data = {"csrf": csrf, "closes_at": later.isoformat()}  # +00:00, not the campaign's zone
    assert client.post(f"/admin/campaigns/{cid}/extend", data=data).status_code == 303
    assert datetime.fromisoformat(closes_at(system, cid)) == later
