"""What an operator runs around a deploy: `votestream migrate [--check]` and `votestream keygen`.

`migrate` is the only way the schema changes outside `votestream up`: services wait for it
and never migrate by themselves. Both commands print lines a Job log or a script can read.
"""

from __future__ import annotations

import argparse
import os

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.errors import UnavailableError
from services.publish.signing import ALGORITHM, public_key_text, signing_key_text
from services.runtime.db import DB_ERRORS, check_schema, expected_version
from services.runtime.db import migrate as apply_migrations
from services.runtime.settings import Settings
from services.runtime.startup import retrying

KEYGEN_FORMATS = ("env", "json")


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = sub.add_parser("migrate", help="apply the database migrations this code ships")
    migrate.add_argument(
        "--check", action="store_true", help="apply nothing; exit 1 if any migration is pending"
    )
    migrate.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to retry while PostgreSQL does not answer (default 120)",
    )
    keygen = sub.add_parser("keygen", help="a new snapshot signing key and its public key")
    keygen.add_argument(
        "--format",
        choices=KEYGEN_FORMATS,
        default="env",
        help="env: a VOTESTREAM_SIGNING_KEY= line (an env file for a Secret) and the public"
        " key as a comment line; json: both as fields",
    )


async def migrate(args: argparse.Namespace) -> int:
    dsn = Settings.from_env(os.environ).dsn
    try:
        async for attempt in retrying("postgres", DB_ERRORS, give_up_after=args.wait):
            with attempt:
                return await (_check(dsn) if args.check else _apply(dsn))
    except DB_ERRORS as exc:
        raise UnavailableError(
            f"PostgreSQL did not answer within {args.wait:g} s: {type(exc).__name__}: {exc}"
        ) from exc
    raise AssertionError("not reached: retrying returns or raises")


async def _apply(dsn: str) -> int:
    for name in await apply_migrations(dsn):
        print(f"applied {name}", flush=True)
    print(f"schema is current (version {expected_version()})")
    return 0


async def _check(dsn: str) -> int:
    state = await check_schema(dsn)
    state.refuse_if_newer()
    if state.pending:
        for name in state.pending:
            print(f"pending {name}")
        print(f"{len(state.pending)} migration(s) pending: run `votestream migrate`")
        return 1
    print(f"schema is current (version {expected_version()})")
    return 0


def keygen(args: argparse.Namespace) -> int:
    key = Ed25519PrivateKey.generate()
    private, public = signing_key_text(key), public_key_text(key)
    if args.format == "json":
        print(
            orjson.dumps(
                {"signing_key": private, "public_key": public, "algorithm": ALGORITHM}
            ).decode()
        )
    else:
        print(f"VOTESTREAM_SIGNING_KEY={private}")
        print(f"# public key ({ALGORITHM}, as GET /v1/publish/public-key shows it): {public}")
    return 0
