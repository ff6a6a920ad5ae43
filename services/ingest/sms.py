"""Sending login codes by SMS: one small interface, a dev sender, and how to plug in a real one.

`VOTESTREAM_SMS_SENDER=dev` (the default) appends each message to `sms-outbox.jsonl` in the
data dir instead of sending it: that file is the dev "phone". Production names a factory,
`VOTESTREAM_SMS_SENDER=package.module:factory`, called with the Settings and returning an
SmsSender (the city's SMS gateway client). A sender raises SmsError when the gateway
refuses; the login then answers 503 and stores no code.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from services.domain.errors import SettingsError, UnavailableError
from services.runtime.settings import Settings

OUTBOX = "sms-outbox.jsonl"
log = logging.getLogger(__name__)


class SmsError(UnavailableError):
    code = "sms_unavailable"


class SmsSender(Protocol):
    async def send(self, phone: str, text: str, *, phone_key: str, code: str) -> None:
        """Delivers `text` to `phone` (E.164). `phone_key` and `code` are for dev senders."""


def masked(phone: str) -> str:
    """+8613800138000 -> +86138****8000: enough for a person to recognise their number."""
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"


class DevFileSmsSender:
    """Writes messages to a file (mode 0600) instead of a phone: the phone number is masked;
    `phone_key` (the pseudonymous key the database also uses) lets tests find their code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, phone: str, text: str, *, phone_key: str, code: str) -> None:
        line = json.dumps(
            {
                "sent_at": datetime.now(UTC).isoformat(),
                "to": masked(phone),
                "phone_key": phone_key,
                "code": code,
                "text": text,
            },
            ensure_ascii=False,
        )
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def sender_from_settings(settings: Settings) -> SmsSender:
    if settings.sms_sender == "dev":
        log.warning("VOTESTREAM_SMS_SENDER=dev: login codes go to %s, not to phones", OUTBOX)
        return DevFileSmsSender(settings.data_dir / OUTBOX)
    module_name, _, factory_name = settings.sms_sender.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SettingsError(
            f"VOTESTREAM_SMS_SENDER={settings.sms_sender!r}: not 'dev' nor an importable "
            "'module:factory'"
        ) from exc
    sender: SmsSender = factory(settings)
    return sender
