"""Secured listeners for :class:`LocalKafka`: TLS material and SASL users.

One broker serves every mode on its own listener, so security tests pay for one JVM:
``SASL_SSL`` (SCRAM-SHA-512 and PLAIN on the same listener) and ``SSL`` requiring a client
certificate. The certificates (a throwaway CA, the server one for 127.0.0.1/::1/localhost and a
client one) come from ``consumer.testing.tls``, shared with the HTTPS emulator; the broker reads
them as PEM. Inter-broker and controller traffic stay on PLAINTEXT listeners that need no secrets.
Stdlib only, plus lazy ``confluent_kafka`` imports to check the listeners answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from consumer.testing.localkafka.errors import StartError, UnavailableError
from consumer.testing.tls import OpenSslNotFound, TlsMaterial, TlsMaterialError, ensure_tls_material

#: What a client can use: SCRAM-SHA-512 or PLAIN over SASL_SSL, or mutual TLS.
Mode = Literal["scram", "plain", "mtls"]
MODES: tuple[Mode, ...] = ("scram", "plain", "mtls")

_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


@dataclass(frozen=True)
class SecureListeners:
    """Where the secured listeners are and the credentials they accept."""

    sasl_ssl_port: int
    ssl_port: int
    tls_dir: Path
    scram_username: str = "alice"
    scram_password: str = "alice-secret"
    plain_username: str = "bob"
    plain_password: str = "bob-secret"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """SASL_SSL: SCRAM-SHA-512 and PLAIN, broker certificate signed by :attr:`ca_file`."""
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        """SSL with ``ssl.client.auth=required``: present :attr:`client_cert_file`."""
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def tls(self) -> TlsMaterial:
        return TlsMaterial(self.tls_dir)

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    @property
    def client_cert_file(self) -> Path:
        return self.tls.client_cert_file

    @property
    def client_key_file(self) -> Path:
        return self.tls.client_key_file

    def listeners(self) -> dict[str, int]:
        """Listener name (also its security protocol) -> port."""
        return {"SASL_SSL": self.sasl_ssl_port, "SSL": self.ssl_port}

    def env(self, mode: Mode, password: str | None = None) -> dict[str, str]:
        """The consumer's ``KAFKA_*`` variables for ``mode``; ``password`` overrides the SASL one
        (to try a wrong one)."""
        env = {"KAFKA_SSL_CA_LOCATION": str(self.ca_file)}
        if mode == "mtls":
            return env | {
                "KAFKA_BOOTSTRAP_SERVERS": self.ssl_bootstrap,
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CERTIFICATE_LOCATION": str(self.client_cert_file),
                "KAFKA_SSL_KEY_LOCATION": str(self.client_key_file),
            }
        scram = mode == "scram"
        return env | {
            "KAFKA_BOOTSTRAP_SERVERS": self.sasl_ssl_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512" if scram else "PLAIN",
            "KAFKA_SASL_USERNAME": self.scram_username if scram else self.plain_username,
            "KAFKA_SASL_PASSWORD": password
            or (self.scram_password if scram else self.plain_password),
        }

    def client_config(self, mode: Mode) -> dict[str, Any]:
        """The same as :meth:`env`, as librdkafka properties (for tools outside the consumer)."""
        names = {
            "KAFKA_SECURITY_PROTOCOL": "security.protocol",
            "KAFKA_SASL_MECHANISM": "sasl.mechanism",
            "KAFKA_SASL_USERNAME": "sasl.username",
            "KAFKA_SASL_PASSWORD": "sasl.password",
            "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
            "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
            "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
            "KAFKA_BOOTSTRAP_SERVERS": "bootstrap.servers",
        }
        return {names[k]: v for k, v in self.env(mode).items()}

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments: in KRaft, SCRAM users live in the metadata log."""
        user, password = self.scram_username, self.scram_password
        return ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]

    def wait_ready(self, check: Callable[[], None], timeout: float = 30.0) -> None:
        """Once the broker is up on PLAINTEXT, prove a SCRAM and an mTLS client get metadata,
        so a broken TLS or SASL setting fails start-up with the broker log, not a test later."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        for mode in ("scram", "mtls"):
            check()
            admin = AdminClient(self.client_config(mode))
            try:
                admin.list_topics(timeout=timeout)
            except KafkaException as exc:
                raise StartError(f"the {mode} listener does not answer: {exc}") from None

    def server_properties(self) -> str:
        """Broker properties for these listeners (the listener list itself is the caller's)."""
        try:
            tls = ensure_tls_material(self.tls_dir)
        except OpenSslNotFound as exc:
            raise UnavailableError(f"the secured broker: {exc}") from None
        except TlsMaterialError as exc:
            raise StartError(str(exc)) from None
        chain = _inline(tls.server_cert_file)
        key = _inline(tls.server_key_file)
        plain_users = f'user_{self.plain_username}="{self.plain_password}"'
        return (
            "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN\n"
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={_SCRAM_MODULE} required;\n"
            f"listener.name.sasl_ssl.plain.sasl.jaas.config={_PLAIN_MODULE} required "
            f"{plain_users};\n"
            "ssl.keystore.type=PEM\n"
            f"ssl.keystore.certificate.chain={chain}\n"
            f"ssl.keystore.key={key}\n"
            "ssl.truststore.type=PEM\n"
            f"ssl.truststore.location={self.ca_file}\n"
            "listener.name.ssl.ssl.client.auth=required\n"
        )


def listener_properties(plaintext: int, controller: int, security: SecureListeners | None) -> str:
    """``listeners``, ``advertised.listeners`` and the protocol map, plus the security settings
    when there are secured listeners; inter-broker traffic stays on PLAINTEXT."""
    ports = {"PLAINTEXT": plaintext, "CONTROLLER": controller}
    ports |= security.listeners() if security else {}
    listeners = ",".join(f"{name}://127.0.0.1:{port}" for name, port in ports.items())
    protocols = ",".join(f"{n}:{'PLAINTEXT' if n == 'CONTROLLER' else n}" for n in ports)
    lines = [f"listeners={listeners}", f"advertised.listeners={listeners}"]
    lines.append(f"listener.security.protocol.map={protocols}")
    return "\n".join(lines) + ("\n" + security.server_properties() if security else "")


def _inline(pem: Path) -> str:
    """A PEM file as one properties value (java.util.Properties turns ``\\n`` back into lines)."""
    return pem.read_text().strip().replace("\n", "\\n")
