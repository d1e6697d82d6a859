"""Settings from environment variables, checked before anything connects anywhere.

One typed object, so a wrong setting stops start-up with a message naming the variable instead of
failing later inside librdkafka or boto3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from consumer import DEFAULT_MAPPING_FILE, DEFAULT_SCHEMA_FILE
from consumer.config.checks import cross_field_problems, fixed_property_problems
from consumer.decode.schema import load_schema_file
from consumer.errors import ConfigError


class Settings(BaseSettings):
    """Every setting of `personalize-consumer run`, read from the environment (upper-case names)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(min_length=1)
    kafka_group_id: str = Field(default="personalize-consumer", min_length=1)
    source_topics: Annotated[tuple[str, ...], NoDecode]
    dead_letter_topic: str = Field(min_length=1)
    personalize_tracking_id: str = Field(min_length=1, max_length=256)
    avro_schema_file: Path = DEFAULT_SCHEMA_FILE
    #: How records become PutEvents events (YAML); the default maps schemas/interaction.avsc.
    mapping_file: Path = DEFAULT_MAPPING_FILE
    #: Records in the Confluent wire format, writer schemas fetched by id (AVRO_SCHEMA_FILE unused).
    schema_registry_url: str | None = None
    schema_registry_basic_auth_user_info: SecretStr | None = None
    #: Optional reader schema: records of older/newer writer schemas are read into this shape.
    avro_reader_schema_file: Path | None = None
    kafka_auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    #: How long start-up waits for the cluster to answer before it gives up (exit 3).
    kafka_startup_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    #: boto3 reads only AWS_DEFAULT_REGION; AWS_REGION is what most tooling sets, so take either.
    aws_region: str = Field(min_length=1)
    aws_endpoint_url_personalize_events: str | None = None
    consume_batch_size: int = Field(default=500, ge=1, le=100_000)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    batch_linger_ms: int = Field(default=200, ge=0, le=60_000)
    max_in_flight_calls: int = Field(default=32, ge=1, le=512)
    max_buffered_records: int = Field(default=40_000, ge=10)
    max_calls_per_second: float | None = Field(default=None, gt=0)
    #: The other operations' caps, per pod, defaulting to AWS's quotas for them (README).
    put_items_calls_per_second: float = Field(default=10.0, gt=0)
    put_users_calls_per_second: float = Field(default=10.0, gt=0)
    put_actions_calls_per_second: float = Field(default=10.0, gt=0)
    put_action_interactions_calls_per_second: float = Field(default=1000.0, gt=0)
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    commit_interval_ms: int = Field(default=1000, ge=10)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: /metrics, /healthz and /readyz; 0 turns the endpoint off.
    metrics_port: int = Field(default=9400, ge=0, le=65535)

    # Kafka security (the same for the consumer and the dead-letter producer).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None
    ) = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    #: Amazon MSK IAM: SASL/OAUTHBEARER with tokens signed by the default AWS credential chain.
    kafka_msk_iam: bool = False
    #: The MSK cluster's region when it differs from AWS_REGION (the event tracker's).
    kafka_msk_iam_region: str | None = None
    #: Any other `KAFKA_<PROPERTY>` variable, as librdkafka properties (`KAFKA_FETCH_MAX_BYTES`
    #: becomes `fetch.max.bytes`). Never logged: it may carry credentials.
    kafka_properties: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("source_topics", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @field_validator("source_topics")
    @classmethod
    def _at_least_one_topic(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one topic, comma-separated")
        return value

    @field_validator("log_level", "kafka_auto_offset_reset", mode="before")
    @classmethod
    def _normalise_case(cls, value: object, info: object) -> object:
        if not isinstance(value, str):
            return value
        name = getattr(info, "field_name", "")
        return value.upper() if name == "log_level" else value.lower()

    @field_validator("avro_schema_file", "avro_reader_schema_file")
    @classmethod
    def _schema_parses(cls, value: Path | None) -> Path | None:
        if value is not None:
            if not value.is_file():
                raise ValueError(f"no such file: {value}")
            load_schema_file(value)  # its ValueError names the file and the problem
        return value

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_urls(cls, value: str | None) -> str | None:
        for url in (value or "").split(","):
            parsed = urlparse(url.strip())
            if value is not None and (parsed.scheme not in ("http", "https") or not parsed.netloc):
                raise ValueError("must be http(s) URLs, comma-separated")
        return value

    @field_validator("aws_endpoint_url_personalize_events")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                "must be an http(s) URL such as https://personalize-events.eu-west-1.amazonaws.com"
            )
        return value

    @field_validator(
        "kafka_ssl_ca_location",
        "kafka_ssl_certificate_location",
        "kafka_ssl_key_location",
        "mapping_file",
    )
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value


def environment_help() -> str:
    """The variables `run` reads, for `--help`: the required ones, then the rest with defaults."""
    required, optional = [], []
    for name, field in Settings.model_fields.items():
        if name == "kafka_properties":
            continue
        if field.is_required():
            required.append(name.upper() + (" (or AWS_DEFAULT_REGION)" * (name == "aws_region")))
        else:
            default = field.get_default(call_default_factory=True)
            optional.append(f"{name.upper()}={_shown(default)}")
    return "\n".join(
        [
            "configured by environment variables (or a dotenv file named by SETTINGS_FILE);",
            "README.md, section Configuration, says what each one means.",
            "required:",
            *(f"  {line}" for line in required),
            "optional (default):",
            *(f"  {line}" for line in optional),
            "  KAFKA_<PROPERTY>: any other librdkafka property, e.g. KAFKA_FETCH_MAX_BYTES",
        ]
    )


def _shown(default: object) -> str:
    if default is None:
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    return f"{default:g}" if isinstance(default, float) else str(default)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check all settings; raise ConfigError naming each bad variable.

    `SETTINGS_FILE` may name a dotenv file of the same variables; the environment wins over it.
    """
    env = dict(os.environ if environ is None else environ)
    if env.get("SETTINGS_FILE"):
        path = Path(env["SETTINGS_FILE"])
        if not path.is_file():
            raise ConfigError(f"SETTINGS_FILE: no such file: {path}")
        from_file = {k: v for k, v in dotenv_values(path).items() if v is not None}
        env = from_file | env
    values: dict[str, object] = {
        k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields
    }
    if "aws_region" not in values and env.get("AWS_DEFAULT_REGION"):
        values["aws_region"] = env["AWS_DEFAULT_REGION"]
    properties = {
        k[len("KAFKA_") :].lower().replace("_", "."): v
        for k, v in env.items()
        if k.startswith("KAFKA_") and k.lower() not in Settings.model_fields
    }
    values["kafka_properties"] = properties
    problems: list[str] = []
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems = _describe(exc)
    # Checked on the raw values too, so they are reported with the rest, not after it is fixed.
    problems += cross_field_problems(values) + fixed_property_problems(properties)
    if problems:
        raise ConfigError(problems)
    return settings


def _describe(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error["loc"][:1]).upper()
        message = "required" if error["type"] == "missing" else error["msg"]
        message = message.removeprefix("Value error, ")
        lines.append(f"{name}: {message}" if name else message)
    return lines
