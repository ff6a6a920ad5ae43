"""Fixtures of the end-to-end tests beyond the whole running system (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support.fake_wechat import WeChatPeer
from tests.support.system import System


@pytest.fixture(scope="module")
def peer(system: System) -> WeChatPeer:
    """WeChat's servers as the account's followers reach votestream through them."""
    return WeChatPeer(
        system.ingest,
        system.secret("wechat_token"),
        system.secret("wechat_appid"),
        system.secret("wechat_aes_key"),
    )
