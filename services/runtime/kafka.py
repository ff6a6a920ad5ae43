"""Topics and producers. Idempotence stays off: the embedded broker fails InitProducerId,
and exactly-once effect comes from Postgres keys, not from the producer."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from services.domain.errors import SettingsError
from services.runtime.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

BALLOTS = "ballots"
SNAPSHOTS = "snapshots"
DETECTIONS = "detections"


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client proves itself to the brokers: nothing (the embedded broker), TLS, or
    SASL (SCRAM with Strimzi) over TLS. One object feeds aiokafka and Faust alike."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str = field(default="", repr=False)
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        security = cls(
            settings.kafka_security_protocol,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username,
            settings.kafka_sasl_password,
            settings.kafka_ca_file,
        )
        if security.sasl and not (security.username and security.password):
            raise SettingsError(
                f"VOTESTREAM_KAFKA_SECURITY_PROTOCOL={security.protocol} needs"
                " VOTESTREAM_KAFKA_SASL_USERNAME and VOTESTREAM_KAFKA_SASL_PASSWORD"
            )
        if security.ca_file is not None and not security.ca_file.is_file():
            raise SettingsError(f"VOTESTREAM_KAFKA_CA_FILE={security.ca_file}: no such file")
        return security

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifies the brokers' certificates and host names against the CA file."""
        if not self.tls:
            return None
        cafile = str(self.ca_file) if self.ca_file is not None else None
        context: ssl.SSLContext = create_ssl_context(cafile=cafile)
        return context

    def aiokafka_config(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        if self.protocol == "PLAINTEXT":
            return {}
        config: dict[str, Any] = {
            "security_protocol": self.protocol,
            "ssl_context": self.ssl_context(),
        }
        if self.sasl:
            config["sasl_mechanism"] = self.mechanism
            config["sasl_plain_username"] = self.username
            config["sasl_plain_password"] = self.password
        return config

    def faust_credentials(self) -> CredentialsT | None:
        """The same as Faust's `broker_credentials` (Faust picks SASL_SSL from the context)."""
        # Imported here: only the tally runs Faust, and importing it costs ingest and
        # publish a fifth of a second at start.
        from faust.auth import SASLCredentials, SSLCredentials

        context = self.ssl_context()
        if self.sasl:
            return SASLCredentials(
                username=self.username,
                password=self.password,
                mechanism=self.mechanism,
                ssl_context=context,
            )
        return SSLCredentials(context) if context is not None else None


PLAINTEXT = KafkaSecurity()


async def ensure_topics(
    bootstrap: str, partitions: int, security: KafkaSecurity = PLAINTEXT
) -> None:
    """Creates `ballots` (keyed by voter), `snapshots` and `detections` if missing."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, **security.aiokafka_config()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(BALLOTS, partitions, 1),
            NewTopic(SNAPSHOTS, 1, 1),
            NewTopic(DETECTIONS, 1, 1),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(missing)
    finally:
        await admin.close()


def make_producer(
    bootstrap: str, *, linger_ms: int = 1, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaProducer:
    """acks=all: a send completes only once every in-sync replica has the record."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **security.aiokafka_config(),
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
        request_timeout_ms=10_000,
        retry_backoff_ms=100,
        max_batch_size=256 * 1024,
    )


def producer_for(settings: Settings, *, linger_ms: int = 1) -> AIOKafkaProducer:
    """The service's producer: its brokers and its credentials, both from settings."""
    security = KafkaSecurity.from_settings(settings)
    return make_producer(settings.bootstrap, linger_ms=linger_ms, security=security)


def consumer_for(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A client of the service's brokers with its credentials, for reading offsets and
    records outside the tally's Faust consumer; `options` are aiokafka's."""
    security = KafkaSecurity.from_settings(settings)
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, **security.aiokafka_config(), **options
    )


async def start_producer(producer: AIOKafkaProducer, attempts: int = 50) -> None:
    """Starts once the broker answers (it may still be coming up)."""
    for attempt in range(attempts):
        try:
            await producer.start()
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)
