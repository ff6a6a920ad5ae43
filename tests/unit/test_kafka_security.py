"""Kafka client security from settings: SCRAM over TLS for aiokafka and Faust alike."""

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from services.domain.errors import SettingsError
from services.runtime import supervisor
from services.runtime.drain import DrainMarker
from services.runtime.kafka import KafkaSecurity, make_producer, producer_for
from services.runtime.settings import Settings
from services.tally.app import create_faust_app

CA_NAME = "votestream test cluster CA"


def write_ca(path: Path) -> Path:
    """A self-signed CA certificate, as Strimzi's cluster CA Secret holds in ca.crt."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def scram_env(ca_file: Path) -> dict[str, str]:
    return {
        "VOTESTREAM_KAFKA_BOOTSTRAP": "votestream-kafka-bootstrap:9093",
        "VOTESTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VOTESTREAM_KAFKA_SASL_USERNAME": "votestream-tally",
        "VOTESTREAM_KAFKA_SASL_PASSWORD": "s3cret-scram",
        "VOTESTREAM_KAFKA_CA_FILE": str(ca_file),
    }


def trusts_only_the_ca(context: ssl.SSLContext) -> bool:
    subjects = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
    return (
        context.verify_mode == ssl.CERT_REQUIRED
        and context.check_hostname
        and subjects == [{"commonName": CA_NAME}]
    )


def test_scram_over_tls_settings_give_aiokafka_the_scram_config(tmp_path: Path) -> None:
    settings = Settings.from_env(scram_env(write_ca(tmp_path / "ca.crt")))
    config = KafkaSecurity.from_settings(settings).aiokafka_config()
    context = config.pop("ssl_context")
    assert config == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "votestream-tally",
        "sasl_plain_password": "s3cret-scram",
    }
    assert trusts_only_the_ca(context)


async def test_the_producer_speaks_scram_over_tls(tmp_path: Path) -> None:
    producer = producer_for(Settings.from_env(scram_env(write_ca(tmp_path / "ca.crt"))))
    client = producer.client
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "votestream-tally"
    assert client._sasl_plain_password == "s3cret-scram"
    assert trusts_only_the_ca(client._ssl_context)


def test_faust_gets_the_same_client_config_as_aiokafka(tmp_path: Path) -> None:
    settings = Settings.from_env(scram_env(write_ca(tmp_path / "ca.crt")))
    app = create_faust_app(settings)
    faust_config = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials))
    ours = KafkaSecurity.from_settings(settings).aiokafka_config()
    assert trusts_only_the_ca(faust_config.pop("ssl_context"))
    ours.pop("ssl_context")
    assert faust_config == ours


def test_tls_without_sasl_verifies_the_brokers_only(tmp_path: Path) -> None:
    env = {
        "VOTESTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
        "VOTESTREAM_KAFKA_CA_FILE": str(write_ca(tmp_path / "ca.crt")),
    }
    security = KafkaSecurity.from_settings(Settings.from_env(env))
    config = security.aiokafka_config()
    assert set(config) == {"security_protocol", "ssl_context"}
    assert config["security_protocol"] == "SSL"
    faust_config = credentials_to_aiokafka_auth(security.faust_credentials())
    assert faust_config["security_protocol"] == "SSL"


async def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = Settings.from_env({})
    security = KafkaSecurity.from_settings(settings)
    assert security.aiokafka_config() == {}
    assert security.faust_credentials() is None
    assert create_faust_app(settings).conf.broker_credentials is None
    assert make_producer("127.0.0.1:9092").client._security_protocol == "PLAINTEXT"


def test_sasl_without_a_password_is_refused_naming_the_variables() -> None:
    env = {"VOTESTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VOTESTREAM_KAFKA_SASL_USERNAME": "u"}
    with pytest.raises(SettingsError, match="VOTESTREAM_KAFKA_SASL_PASSWORD"):
        KafkaSecurity.from_settings(Settings.from_env(env))


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    env = {
        "VOTESTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
        "VOTESTREAM_KAFKA_CA_FILE": str(tmp_path / "absent.crt"),
    }
    with pytest.raises(SettingsError, match="VOTESTREAM_KAFKA_CA_FILE"):
        KafkaSecurity.from_settings(Settings.from_env(env))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VOTESTREAM_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
        ("VOTESTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-1"),
    ],
)
def test_unknown_protocols_and_mechanisms_are_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_the_password_never_shows_in_settings_or_errors() -> None:
    settings = Settings.from_env({"VOTESTREAM_KAFKA_SASL_PASSWORD": "s3cret-scram"})
    assert "s3cret-scram" not in repr(settings)
    assert "s3cret-scram" not in repr(KafkaSecurity.from_settings(settings))


async def test_up_drains_with_the_credentials_of_the_services(tmp_path: Path) -> None:
    """`votestream up` against a secured Kafka: its drain marker's clients speak SCRAM too."""
    marker = DrainMarker(Settings.from_env(scram_env(write_ca(tmp_path / "ca.crt"))))
    for client in (marker.consumer()._client, marker.producer().client):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_plain_username == "votestream-tally"


async def test_up_creates_the_topics_with_the_credentials_of_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[KafkaSecurity] = []

    async def ensure_topics(bootstrap: str, partitions: int, security: KafkaSecurity) -> None:
        given.append(security)
        raise ConnectionRefusedError  # stops `prepare` before it needs Postgres

    monkeypatch.setattr(supervisor, "ensure_topics", ensure_topics)
    settings = Settings.from_env(scram_env(write_ca(tmp_path / "ca.crt")))
    with pytest.raises(ConnectionRefusedError):
        await supervisor.prepare(settings, None, "14d")
    assert [s.protocol for s in given] == ["SASL_SSL"] and given[0].username == "votestream-tally"
