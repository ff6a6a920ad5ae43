"""What Strimzi and CloudNativePG do for the manifests, on the test's own servers: the
KafkaTopics on one plaintext broker, and a new Postgres cluster whose application database
`app` is empty and owned by user `app`, reached with a password from the pod network."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.embedded import EmbeddedPostgres
from services.runtime.processes import free_port

from ..manifests import Manifest, by_kind
from .pods import Secrets

APP_USER = "app"  # CloudNativePG's default application database and its owner


def operator_secrets(docs: list[Manifest], database_uri: str) -> Secrets:
    """The Secrets the operators write: the application database's URI, Strimzi's cluster
    CA and one password per KafkaUser. The Kafka ones are placeholders: the rehearsal's
    broker is plaintext (the Kafka client security goes with the broker's address)."""
    made: Secrets = {
        "votestream-db-app": {"uri": database_uri, "username": APP_USER},
        "votestream-cluster-ca-cert": {"ca.crt": "rehearsal: the broker is plaintext\n"},
    }
    for user in by_kind(docs, "KafkaUser"):
        made[user["metadata"]["name"]] = {"password": secrets.token_hex(12)}
    return made


async def create_topics(docs: list[Manifest], bootstrap: str) -> None:
    """The topic operator's part: each KafkaTopic, on one broker (replicas 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    t["spec"].get("topicName", t["metadata"]["name"]), t["spec"]["partitions"], 1
                )
                for t in by_kind(docs, "KafkaTopic")
            ]
        )
    finally:
        await admin.close()


def fresh_postgres(data: Path, port: int, host: str, password: str) -> EmbeddedPostgres:
    """Initialised on loopback (the role and the empty database made there), then serving
    at `host`, where the pods may log in as `app` with its password and nobody else."""
    setup = EmbeddedPostgres(data, free_port())
    setup.start()
    try:
        asyncio.run(_create_app_database(setup.dsn, password))
    finally:
        setup.stop()
    with (setup.cluster / "pg_hba.conf").open("a") as hba:
        # the embedded server's own check connects from the host; the pods from the network
        hba.write("host all votestream samehost trust\n")
        hba.write(f"host {APP_USER} {APP_USER} samenet scram-sha-256\n")
    server = EmbeddedPostgres(data, port, host)
    server.start()
    return server


async def _create_app_database(dsn: str, password: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{password}'")
        await conn.execute(f"CREATE DATABASE {APP_USER} OWNER {APP_USER}")
    finally:
        await conn.close()
