"""Reaching Postgres and Kafka at start, as a service in a cluster must: they may come up
after it, so it retries with capped, jittered backoff instead of exiting, and it waits for
the schema its code expects (an operator runs `votestream migrate`; no service migrates by
itself). A schema newer than the code is no reason to wait: that stops the start at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

from services.runtime.db import DB_ERRORS, check_schema

log = logging.getLogger(__name__)
FIRST_WAIT = 0.2  # seconds; doubles each attempt, plus up to JITTER, never above MAX_WAIT
MAX_WAIT = 5.0
JITTER = 0.5
KAFKA_UNREACHABLE = (OSError, KafkaError)


class SchemaPendingError(Exception):
    """The database lacks migrations this code needs: wait for `votestream migrate`."""


def retrying(
    what: str, errors: tuple[type[BaseException], ...], give_up_after: float | None = None
) -> AsyncRetrying:
    """Retries on `errors` with capped, jittered exponential backoff, logging each wait."""

    def waiting(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "waiting for %s: %s",
            what,
            f"{type(exc).__name__}: {exc}"[:300],
            extra={"attempt": state.attempt_number},
        )

    return AsyncRetrying(
        wait=wait_exponential_jitter(initial=FIRST_WAIT, max=MAX_WAIT, jitter=JITTER),
        stop=stop_never if give_up_after is None else stop_after_delay(give_up_after),
        retry=retry_if_exception_type(errors),
        before_sleep=waiting,
        reraise=True,
    )


async def wait_for_schema(dsn: str, give_up_after: float | None = None) -> None:
    """Returns once Postgres answers with every shipped migration applied.

    Raises SchemaTooNewError at once when the database knows migrations this code does not.
    """
    async for attempt in retrying(
        "postgres and the schema", (*DB_ERRORS, SchemaPendingError), give_up_after
    ):
        with attempt:
            state = await check_schema(dsn)
            state.refuse_if_newer()
            if state.pending:
                pending = ", ".join(state.pending)
                raise SchemaPendingError(
                    f"migrations pending (run `votestream migrate`): {pending}"
                )


async def keep_trying(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Runs `step` until Postgres lets it finish (e.g. the first read of the campaigns)."""
    async for attempt in retrying(what, DB_ERRORS):
        with attempt:
            await step()


async def start_producer_when_reachable(producer: AIOKafkaProducer) -> None:
    async for attempt in retrying("kafka", KAFKA_UNREACHABLE):
        with attempt:
            await producer.start()


async def wait_for_kafka(bootstrap: str, **client_config: Any) -> None:
    """Returns once a Kafka broker answers a metadata request (`client_config`: security)."""
    async for attempt in retrying("kafka", KAFKA_UNREACHABLE):
        with attempt:
            client = AIOKafkaClient(
                bootstrap_servers=bootstrap, request_timeout_ms=5000, **client_config
            )
            try:
                await client.bootstrap()
            finally:
                await client.close()
