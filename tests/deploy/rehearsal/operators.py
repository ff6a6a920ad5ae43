"""What Strimzi and CloudNativePG do for the manifests, on the test's own servers: the
KafkaTopics on one plaintext broker, and a new Postgres cluster whose application database
`app` is empty and owned by user `app`, reached with a password from the pod network."""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.embedded import EmbeddedPostgres
from services.runtime.postgres_home import discard_cluster, reachable_cluster
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
    """A new cluster serving at `host`, where the pods may log in as `app` with `password`
    and nobody else; its `app` database is empty. A copy of one cluster initialised per
    test session (initdb is most of a start), with this run's password."""
    cluster = _cluster_dir(data)
    subprocess.run(["cp", "-a", f"{_template()}/.", str(cluster)], check=True)
    server = EmbeddedPostgres(data, port, host)
    server.start()
    asyncio.run(_set_password(f"postgresql://votestream@{host}:{port}/votestream", password))
    return server


@cache
def _template() -> Path:
    """The cluster every rehearsal copies: initialised on loopback, role and empty
    database made, stopped, with the pod network allowed in pg_hba.conf."""
    data = Path(tempfile.mkdtemp(prefix="rehearsal-postgres-")) / "cluster"
    setup = EmbeddedPostgres(data, free_port())
    atexit.register(shutil.rmtree, data.parent, ignore_errors=True)
    atexit.register(discard_cluster, data)  # atexit runs it first
    setup.start()
    try:
        asyncio.run(_create_app_database(setup.dsn))
    finally:
        setup.stop()
    with (setup.cluster / "pg_hba.conf").open("a") as hba:
        # the embedded server's own check connects from the host; the pods from the network
        hba.write("host all votestream samehost trust\n")
        hba.write(f"host {APP_USER} {APP_USER} samenet scram-sha-256\n")
    return setup.cluster


def _cluster_dir(data: Path) -> Path:
    """Where EmbeddedPostgres will keep `data`'s cluster (under root: possibly elsewhere,
    see services/runtime/postgres_home.py)."""
    if os.geteuid() == 0:
        return reachable_cluster(data)
    data.mkdir(parents=True, exist_ok=True)
    return data


async def _create_app_database(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE ROLE {APP_USER} LOGIN")
        await conn.execute(f"CREATE DATABASE {APP_USER} OWNER {APP_USER}")
    finally:
        await conn.close()


async def _set_password(dsn: str, password: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"ALTER ROLE {APP_USER} PASSWORD '{password}'")
    finally:
        await conn.close()
