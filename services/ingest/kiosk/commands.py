"""`votestream kiosk register | revoke | list`: the device registry, from the operator's shell."""

from __future__ import annotations

import argparse
import os

from services.domain.voter_refs import public_key_text, server_sealing_key
from services.ingest.kiosk.registry import PostgresKioskRegistry
from services.runtime.db import connect_pool
from services.runtime.settings import Settings


async def run_registry_command(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ, required=("identity_key",))
    pool = await connect_pool(settings.dsn, max_size=2)
    try:
        registry = PostgresKioskRegistry(pool)
        if args.action == "register":
            public_key = args.public_key.read_text().strip()
            device, created = await registry.register(args.device_id, public_key)
            print(f"{'registered' if created else 'already registered'} {device.device_id}")
            sealing = public_key_text(server_sealing_key(settings.identity_key_bytes))
            print(f"sealing key {sealing} (the agent's --sealing-key)")
        elif args.action == "revoke":
            device = await registry.revoke(args.device_id)
            print(f"revoked {device.device_id} (final)")
        else:
            for kiosk in await registry.listing():
                chain = kiosk["chain"]
                state = "revoked" if kiosk["revoked"] else "active"
                print(
                    f"{kiosk['device_id']}\t{state}\tseq {kiosk['last_seq'] or 0}"
                    f"\t{chain['status']} (gaps {chain['gaps']}, forks {chain['forks']})"
                )
        return 0
    finally:
        await pool.close()
