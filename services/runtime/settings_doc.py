"""The settings reference: every VOTESTREAM_* variable, its default and its meaning.

`python -m services.runtime.settings_doc` rewrites the table in docs/OPERATIONS.md between
its two marker comments; `--check` only says whether the table is current (exit 1 if not).
Defaults come from `Settings` itself; the meanings are kept here, the one place, and a
field without one is an error, so a new setting cannot ship undocumented.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from services.runtime.settings import SECRET_NAMES, Settings

BEGIN = "<!-- settings-reference:begin (python -m services.runtime.settings_doc) -->"
END = "<!-- settings-reference:end -->"
DEFAULT_DOC = Path("docs/OPERATIONS.md")

MEANINGS: dict[str, str] = {
    "data_dir": "Local state: dev secrets (`secrets.env`), embedded services' data, Faust's"
    " directory, the kiosk agent's queue.",
    "host": "Address the HTTP servers bind. `0.0.0.0` in containers, so probes and Services"
    " reach the pod; `votestream up` keeps loopback.",
    "ingest_port": "Port of ingest: the channels, the admin API, `/metrics`.",
    "publish_port": "Port of publish: results API, stream, pages, `/metrics`.",
    "tally_port": "Port of the tally's `/healthz`, `/readyz` and `/metrics`.",
    "kafka_port": "Port of the embedded broker (`votestream up` only).",
    "pg_port": "Port of the embedded PostgreSQL (`votestream up` only).",
    "kafka_bootstrap": "Kafka bootstrap servers, `host:port[,host:port]`. Unset: the"
    " embedded broker on `127.0.0.1:VOTESTREAM_KAFKA_PORT`.",
    "broker_storage": "Where the embedded broker keeps its records: `memory` (lost when it"
    " stops) or `s3` (on disk through a local s3rver, installed by `make tools`).",
    "drain_timeout": "Seconds `votestream up`, stopping, waits for the tally to count what the"
    " broker holds. Past it, a durable or external broker keeps the rest for the next start;"
    " with the in-memory one `up` warns and keeps draining until a further signal.",
    "database_url": "PostgreSQL URL (`postgresql://user:pass@host/db`). Unset: the embedded"
    " PostgreSQL. Secret in production (CloudNativePG's `uri`).",
    "kafka_security_protocol": "How clients reach Kafka: `PLAINTEXT`, `SSL`,"
    " `SASL_PLAINTEXT` or `SASL_SSL` (TLS and SCRAM, as the Strimzi listener requires).",
    "kafka_sasl_mechanism": "SASL mechanism: `SCRAM-SHA-512` (Strimzi), `SCRAM-SHA-256` or"
    " `PLAIN`.",
    "kafka_sasl_username": "Kafka user of this service (its KafkaUser's name). Required"
    " with a `SASL_*` protocol.",
    "kafka_sasl_password": "That user's password (the KafkaUser Secret's `password`).",
    "kafka_ca_file": "PEM file of the CA that signed the brokers' certificates (Strimzi's"
    " cluster CA, `ca.crt`). Unset: the system's trusted CAs.",
    "partitions": "Partitions of topic `ballots` when votestream creates it; the ceiling"
    " on tally workers.",
    "snapshot_interval": "Seconds between result snapshots of each open campaign.",
    "publish_dir": "Where the leader writes each campaign's static files (`latest.json`,"
    " `final.json`, `index.html`). Unset: `<data dir>/public`.",
    "webhooks": "Comma-separated http(s) URLs that receive every snapshot, signed with"
    " `VOTESTREAM_WEBHOOK_SECRET`.",
    "campaign_refresh": "Seconds between reloads of the campaign definitions in each process.",
    "tally_batch_size": "Most ballots the tally stores in one transaction: each batch is what"
    " one poll of Kafka returned, up to this many, so batches grow with the backlog.",
    "tally_group": "Kafka consumer group (and Faust app id) of the tally workers.",
    "wechat_campaign": "Campaign that WeChat messages without a campaign code vote in.",
    "wechat_api_base": "Base URL of WeChat's API (a fake in tests).",
    "web_jwt_public_key": "PEM public key (RS256/EdDSA) of a site whose login tokens"
    " voters bring, instead of the shared secret.",
    "web_jwt_audience": "`aud` that tokens signed by `VOTESTREAM_WEB_JWT_PUBLIC_KEY` must"
    " carry. Required with it.",
    "web_jwt_issuer": "`iss` that tokens signed by `VOTESTREAM_WEB_JWT_PUBLIC_KEY` must"
    " carry. Required with it.",
    "public_base_url": "Public https URL of the vote pages, the base of their QR codes.",
    "publish_base_url": "Public URL of the publication site, for the organiser console's"
    " links and its public-key lookup. Unset: `http://HOST:PUBLISH_PORT` under `up`, else none.",
    "grafana_url": "Grafana dashboard URL the organiser console links to (optional).",
    "trusted_proxies": "Comma-separated CIDRs of the proxies in front of ingest (the"
    " ingress controller): only from them is `X-Forwarded-For` believed. Empty: none.",
    "access_log_sample": "Share of accepted web ballots that get an access log line (0 to 1);"
    " refused and slow (over 1 s) ballots always get one, and metrics count every ballot.",
    "rate_ip_per_second": "Requests a second per client network prefix (0: no limit).",
    "rate_ip_burst": "Burst allowance of the per-network limit.",
    "rate_voter_per_second": "Ballots a second per voter (0: no limit).",
    "rate_voter_burst": "Burst allowance of the per-voter limit.",
    "rate_otp_ip_per_minute": "Login-code requests a minute per client network (0: no limit).",
    "otp_ttl": "Seconds a login code stays valid.",
    "otp_attempts": "Wrong tries before a login code is void.",
    "otp_resend_interval": "Seconds before the same phone may get another code.",
    "otp_daily_sends": "Codes one phone may get a day.",
    "otp_sends_per_minute": "Codes sent a minute to all phones together, across"
    " processes (0: no limit): a cap on SMS cost.",
    "otp_prefix_sends_per_minute": "Codes sent a minute per number block (first 7 digits"
    " of the E.164 number; 0: no limit).",
    "sse_max_connections": "Open result streams per publish process; more get 503 with"
    " `Retry-After`.",
    "web_token_ttl": "Seconds a voter token from a login code stays valid.",
    "sms_sender": "How login codes are sent: `dev` (to a file in the data dir) or"
    " `module:factory` of a real SMS gateway.",
    "admin_token": "Bearer token of the admin API and the console sign-in, at least 24"
    " characters. Required by ingest.",
    "identity_key": "Pepper of every voter key: keep it for the life of the campaigns."
    " Required by ingest.",
    "web_jwt_secret": "Shared secret (HS256) of voter tokens from a site's login.",
    "wechat_token": "Token of the WeChat official account (message signatures).",
    "wechat_appid": "AppID of the WeChat official account.",
    "wechat_appsecret": "AppSecret of the WeChat official account.",
    "wechat_aes_key": "EncodingAESKey (43 characters): WeChat's safe mode; once set,"
    " plaintext pushes are refused.",
    "webhook_secret": "HMAC key that signs webhook deliveries. Required with"
    " `VOTESTREAM_WEBHOOKS`.",
    "signing_key": "Base64 of the raw 32-byte Ed25519 key that signs snapshots"
    " (`votestream keygen`). Required by publish.",
}


class UndocumentedSettingError(Exception):
    """A Settings field has no meaning in MEANINGS (or a meaning names no field)."""


def variable(name: str) -> str:
    return f"VOTESTREAM_{name.upper()}"


def shown_default(name: str, value: object) -> str:
    if name in SECRET_NAMES:
        return "unset (secret)"
    if value is None or value in ("", ()):
        return "unset"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def table() -> str:
    """The Markdown table of every setting, in the order Settings declares them."""
    names = [f.name for f in fields(Settings)]
    missing = [variable(n) for n in names if n not in MEANINGS]
    unknown = [variable(n) for n in MEANINGS if n not in names]
    if missing or unknown:
        raise UndocumentedSettingError(
            f"no meaning for {', '.join(missing) or '-'}; no setting {', '.join(unknown) or '-'}"
            " (edit MEANINGS in services/runtime/settings_doc.py)"
        )
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for f in fields(Settings):
        default = f.default if f.default is not MISSING else None
        rows.append(
            f"| `{variable(f.name)}` | {shown_default(f.name, default)} | {MEANINGS[f.name]} |"
        )
    return "\n".join(rows) + "\n"


def with_table(document: str) -> str:
    """The document with the text between the markers replaced by the current table."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {BEGIN!r} and {END!r} are not in the document")
    return document[: start + len(BEGIN)] + "\n" + table() + document[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.runtime.settings_doc")
    parser.add_argument("doc", nargs="?", type=Path, default=DEFAULT_DOC)
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    args = parser.parse_args(argv)
    current = args.doc.read_text(encoding="utf-8")
    try:
        wanted = with_table(current)
    except UndocumentedSettingError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if wanted != current:
            print(f"{args.doc}: the settings reference is stale; run {parser.prog}")
            return 1
        return 0
    args.doc.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
