"""Structured JSON logs on stderr. Nothing identifying a voter is ever passed to a logger."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError

from services.runtime.correlation import REQUEST_ID

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        request_id = REQUEST_ID.get()
        if request_id is not None:  # logged while an HTTP request is handled
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse as an error with the offending line's raw bytes
    and a traceback. That line is the client's, whatever it holds (a phone in a query string,
    a token in a header), and a flood of them would be a flood of tracebacks: keep only what
    kind of malformed it was."""

    def filter(self, record: logging.LogRecord) -> bool:
        problem = record.exc_info[1] if record.exc_info else None
        if isinstance(problem, HttpProcessingError):
            record.msg, record.args = "malformed request refused", ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.error = type(problem).__name__
        return True


MALFORMED_REQUESTS = MalformedRequests()


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.server").addFilter(MALFORMED_REQUESTS)  # once, however often set up
    for noisy in ("aiokafka", "faust", "mode", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
