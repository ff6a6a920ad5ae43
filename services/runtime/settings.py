"""All VOTESTREAM_* settings, read and validated once; a bad value names its variable."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from services.domain.errors import SettingsError

SECRET_NAMES = (
    "admin_token",
    "identity_key",
    "web_jwt_secret",
    "wechat_token",
    "wechat_appid",
    "wechat_appsecret",
    "wechat_aes_key",
    "webhook_secret",
    "signing_key",
    "kafka_sasl_password",
)
SECRETS_FILE = "secrets.env"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".votestream")
    host: str = "127.0.0.1"
    ingest_port: int = 8080
    publish_port: int = 8081
    tally_port: int = 8082
    kafka_port: int = 9092
    pg_port: int = 5433
    kafka_bootstrap: str | None = None  # unset: the embedded broker
    broker_storage: str = "memory"  # the embedded broker's: "memory" or "s3" (on disk)
    drain_timeout: float = 60.0  # `up` stopping: then it says the tally cannot drain
    database_url: str | None = None  # unset: the embedded PostgreSQL
    kafka_security_protocol: str = "PLAINTEXT"  # SASL_SSL with Strimzi (services/runtime/kafka.py)
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ca_file: Path | None = None  # unset: the system's trusted CAs
    partitions: int = 12
    snapshot_interval: float = 2.0
    publish_dir: Path | None = None
    webhooks: tuple[str, ...] = ()
    campaign_refresh: float = 1.0
    tally_batch_size: int = 2000
    tally_group: str = "votestream-tally"
    wechat_campaign: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    web_jwt_public_key: str | None = None
    web_jwt_audience: str | None = None  # `aud` and `iss` the external login's tokens must
    web_jwt_issuer: str | None = None  # carry: required with web_jwt_public_key (voters.py)
    # Web channel (docs in services/ingest/ratelimit.py and otp.py): a token bucket per
    # client IP prefix and per voter; phone login codes and the voter tokens they earn.
    public_base_url: str | None = None  # the vote page's public URL base (QR codes)
    # the organiser console's links: the publication site's and Grafana's public addresses
    publish_base_url: str | None = None
    grafana_url: str | None = None
    # load balancers / ingress in front of ingest (CIDRs): from these peers, the client's
    # address is taken from X-Forwarded-For, so per-network limits see voters, not the proxy
    trusted_proxies: tuple[str, ...] = ()
    rate_ip_per_second: float = 200.0
    rate_ip_burst: int = 2000
    rate_voter_per_second: float = 1.0
    rate_voter_burst: int = 5
    rate_otp_ip_per_minute: float = 30.0  # carrier NAT puts many phones behind one /24
    otp_ttl: float = 300.0
    otp_attempts: int = 5
    otp_resend_interval: float = 60.0
    otp_daily_sends: int = 10
    otp_sends_per_minute: float = 600.0  # every phone together, across processes (otp.py)
    otp_prefix_sends_per_minute: float = 20.0  # per number block (first 7 digits of E.164)
    sse_max_connections: int = 5000  # open result streams per publish process (stream.py)
    access_log_sample: float = 0.0  # share of accepted ballots with an access line (correlation.py)
    web_token_ttl: float = 3600.0
    sms_sender: str = "dev"  # "dev" (codes to a file in the data dir) or "module:factory"
    admin_token: str = field(default="", repr=False)
    identity_key: str = field(default="", repr=False)
    web_jwt_secret: str = field(default="", repr=False)
    wechat_token: str = field(default="", repr=False)
    wechat_appid: str = field(default="", repr=False)
    wechat_appsecret: str = field(default="", repr=False)
    wechat_aes_key: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    signing_key: str = field(default="", repr=False)

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def dsn(self) -> str:
        return self.database_url or f"postgresql://votestream@127.0.0.1:{self.pg_port}/votestream"

    @property
    def embedded_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def identity_key_bytes(self) -> bytes:
        return self.identity_key.encode()

    @property
    def results_dir(self) -> Path:
        return self.publish_dir or self.data_dir / "public"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, required: Iterable[str] = ()) -> Settings:
        """Settings from VOTESTREAM_* variables, falling back to the data dir's dev secrets.

        `required` names the secrets this service cannot run without.
        """
        needed = set(required)
        errors: list[str] = []
        values: dict[str, Any] = {}
        data_dir = Path(env.get("VOTESTREAM_DATA_DIR", ".votestream"))
        stored = read_secrets(data_dir)
        for f in fields(cls):
            var = f"VOTESTREAM_{f.name.upper()}"
            raw = env.get(var)
            if raw is None and f.name in SECRET_NAMES:
                raw = stored.get(var)
            if raw is None or raw == "":
                if f.name in needed:
                    errors.append(f"{var} is not set (run `votestream up` for dev secrets)")
                continue
            try:
                values[f.name] = _convert(f.name, raw)
            except ValueError as exc:
                errors.append(f"{var}={_shown(f.name, raw)}: {exc}")
        if errors:
            raise SettingsError("bad settings: " + "; ".join(errors))
        return cls(**values)


_INTS = {
    "ingest_port",
    "publish_port",
    "tally_port",
    "kafka_port",
    "pg_port",
    "partitions",
    "tally_batch_size",
    "rate_ip_burst",
    "rate_voter_burst",
    "otp_attempts",
    "otp_daily_sends",
    "sse_max_connections",
}
_FLOATS = {
    "drain_timeout",
    "snapshot_interval",
    "campaign_refresh",
    "otp_ttl",
    "otp_resend_interval",
    "web_token_ttl",
}
_CHOICES = {  # settings that take one of a few words
    "broker_storage": ("memory", "s3"),
    "kafka_security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "kafka_sasl_mechanism": ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"),
}
_URLS = {"public_base_url", "publish_base_url", "grafana_url"}
_RATES = {  # 0: no limit; the highest value allowed
    "rate_ip_per_second": 1_000_000,
    "rate_voter_per_second": 1_000_000,
    "rate_otp_ip_per_minute": 1_000_000,
    "otp_sends_per_minute": 1_000_000,
    "otp_prefix_sends_per_minute": 1_000_000,
    "access_log_sample": 1,  # a share: 0 none, 1 every accepted ballot
}


MIN_ADMIN_TOKEN = 24


def _convert(name: str, raw: str) -> Any:
    if name in _INTS:
        number = int(raw)
        low, high = (1, 65535) if name.endswith("port") else (1, 100_000)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number
    if name in _FLOATS:
        seconds = float(raw)
        if not 0 < seconds <= 3600:
            raise ValueError("must be a number of seconds above 0")
        return seconds
    if name in _RATES:
        rate, high = float(raw), _RATES[name]
        if not 0 <= rate <= high:
            raise ValueError(f"must be a number from 0 to {high:g}")
        return rate
    if name in _CHOICES and raw not in _CHOICES[name]:
        raise ValueError(f"must be one of {', '.join(_CHOICES[name])}")
    if name in ("data_dir", "publish_dir", "kafka_ca_file"):
        return Path(raw)
    if name in _URLS and not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    if name in ("trusted_proxies", "webhooks"):
        return _items(name, raw)
    if name in SECRET_NAMES:
        _check_secret(name, raw)
    return raw


def _check_secret(name: str, raw: str) -> None:
    if name == "admin_token" and len(raw) < MIN_ADMIN_TOKEN:
        # It alone opens the admin API and the console, from any network that reaches them.
        raise ValueError(f"must be at least {MIN_ADMIN_TOKEN} characters: openssl rand -hex 32")
    if name == "wechat_aes_key" and len(raw) != 43:
        raise ValueError("an EncodingAESKey has 43 characters")
    if name == "signing_key" and len(base64.b64decode(raw, validate=True)) != 32:
        raise ValueError("must be the base64 of a raw 32-byte Ed25519 private key")


def _items(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated lists: webhook URLs, trusted proxy networks."""
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if name == "webhooks" and not item.startswith(("http://", "https://")):
            raise ValueError("must be comma-separated http(s) URLs")
        if name == "trusted_proxies":
            ipaddress.ip_network(item, strict=False)  # its ValueError names the bad one
    return items


def _shown(name: str, raw: str) -> str:
    return "<secret>" if name in SECRET_NAMES else repr(raw)


def read_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / SECRETS_FILE
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def ensure_dev_secrets(data_dir: Path) -> Path:
    """Writes random dev secrets once (mode 0600); later runs keep them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRETS_FILE
    if path.exists():
        return path
    aes_key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    generated = {
        "admin_token": secrets.token_urlsafe(24),
        "identity_key": secrets.token_urlsafe(32),
        "web_jwt_secret": secrets.token_urlsafe(32),
        "wechat_token": secrets.token_urlsafe(12),
        "wechat_appid": "wx" + secrets.token_hex(8),
        "wechat_appsecret": secrets.token_hex(16),
        "wechat_aes_key": aes_key,
        "webhook_secret": secrets.token_urlsafe(24),
        "signing_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    lines = [f"VOTESTREAM_{k.upper()}={v}" for k, v in generated.items()]
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return path
