"""Writer schemas by id from a Confluent Schema Registry, sorted into "retry later" and "never".

The decoder asks for a writer schema only the first time it sees a schema id, so this module is
off the hot path; what matters here is the classification of what goes wrong:

- The registry is down, slow, overloaded, or behind a proxy that answers garbage:
  `RegistryUnavailable` (a `TransientError`). The record is fine; its partition is held back and
  fetched again later. Never a reason to dead-letter.
- The registry refuses our credentials (401/403): `RegistryAccessDenied` (a `FatalError`). A
  wrong `SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO` will not fix itself: stop and say so.
- The registry answers that the id does not exist (error code 40403), or the schema behind the id
  is not usable Avro: `SchemaNotUsable`, which the decoder turns into a dead-letter `Failure`. The
  same bytes will never decode.

confluent-kafka's own `SchemaRegistryClient` does the HTTP (auth, TLS, fail-over between URLs,
its own cache by id). Its retries are turned off: they sleep on the calling thread, and the caller
is the poll loop, which must keep polling; the pipeline's hold-and-retry does the waiting instead.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

import fastavro

from consumer.errors import RegistryAccessDenied, TransientError

#: Schema Registry error codes that mean "no such thing", for good (documented REST API codes).
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
_NOT_FOUND_CODES = frozenset({SUBJECT_NOT_FOUND, VERSION_NOT_FOUND, SCHEMA_NOT_FOUND})

#: Schema references may nest; a cycle or an absurd depth is a broken registry, not our recursion.
_MAX_REFERENCE_DEPTH = 32


class RegistryUnavailable(TransientError):
    """The Schema Registry could not tell us a writer schema right now: retry the record later.

    The message names the schema id and what went wrong (HTTP status or the network error), never
    record data or credentials.
    """

    def __init__(self, message: str, schema_id: int, status: int | None = None) -> None:
        super().__init__(message)
        self.schema_id = schema_id
        #: The registry's HTTP status, or None when no answer came (refused, timed out, TLS).
        self.status = status


class SchemaNotUsable(Exception):
    """The registry answered, and the answer means records with this schema id never decode."""

    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


class SchemaSource(Protocol):
    """What the decoder needs from a registry: the parsed fastavro writer schema of an id."""

    def writer_schema(self, schema_id: int) -> dict[str, Any]: ...

    def close(self) -> None: ...


class SchemaRegistry:
    """Writer schemas from a Confluent Schema Registry, parsed for fastavro, by schema id.

    Parsing happens in the decoder's cache (once per id); this class fetches, follows schema
    references and classifies errors.
    """

    def __init__(self, client: Any) -> None:
        #: A `confluent_kafka.schema_registry.SchemaRegistryClient` (or anything with its
        #: `get_schema` / `get_version` / `close`); untyped upstream, hence `Any`.
        self._client = client

    @classmethod
    def connect(
        cls, url: str, basic_auth: str | None = None, timeout_s: float = 5.0
    ) -> SchemaRegistry:
        """A client for `url` (comma-separated URLs fail over); `basic_auth` is "user:password".

        `timeout_s` bounds each HTTP request: a fetch runs on the poll loop, so a registry that
        hangs must not stall it for long. Raises ValueError for a bad URL or credentials format.
        """
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, Any] = {"url": url, "timeout": timeout_s, "max.retries": 0}
        if basic_auth is not None:
            if ":" not in basic_auth:
                raise ValueError("Schema Registry basic auth must be user:password")
            conf["basic.auth.user.info"] = basic_auth
        try:
            client = SchemaRegistryClient(conf)
        except (TypeError, ValueError) as exc:
            # The client's messages name the setting; a URL in them may carry credentials.
            raise ValueError(f"Schema Registry client configuration: {_short(exc)}") from None
        return cls(client)

    def close(self) -> None:
        self._client.close()

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        """The parsed writer schema of `schema_id`.

        Raises `RegistryUnavailable` (retry later) or `SchemaNotUsable` (never decodes).
        """
        schema = self._fetch(
            schema_id,
            lambda: self._client.get_schema(schema_id),
            f"the Schema Registry has no schema with id {schema_id}",
        )
        root = _avro_json(schema_id, schema)
        named: dict[str, Any] = {}
        self._parse_references(schema_id, schema, named, set(), 0)
        try:
            parsed = fastavro.parse_schema(root, named)
        except Exception as exc:  # fastavro raises several unrelated types for a bad schema
            raise SchemaNotUsable(
                "InvalidSchema", f"schema id {schema_id} is not a valid Avro schema: {_short(exc)}"
            ) from None
        if not isinstance(parsed, dict) or parsed.get("type") != "record":
            raise SchemaNotUsable(
                "NotARecord", f"schema id {schema_id} is not an Avro record schema"
            )
        return parsed

    def _parse_references(
        self,
        schema_id: int,
        schema: Any,
        named: dict[str, Any],
        seen: set[tuple[str, int]],
        depth: int,
    ) -> None:
        """Parse the named types `schema` references into `named`, dependencies first.

        Each (subject, version) is parsed once, so a type reachable twice (a "diamond") is not
        defined twice, which fastavro would reject.
        """
        if depth > _MAX_REFERENCE_DEPTH:
            raise SchemaNotUsable(
                "InvalidSchema", f"schema id {schema_id}: schema references nest too deep"
            )
        for ref in schema.references or ():
            if ref.subject is None or ref.version is None:
                raise SchemaNotUsable(
                    "InvalidSchema", f"schema id {schema_id}: a schema reference lacks its subject"
                )
            key = (str(ref.subject), int(ref.version))
            if key in seen:
                continue
            seen.add(key)
            registered = self._fetch(
                schema_id,
                lambda r=ref: self._client.get_version(r.subject, r.version, True),
                f"schema id {schema_id} references a schema the Schema Registry does not have",
            )
            referenced = registered.schema
            self._parse_references(schema_id, referenced, named, seen, depth + 1)
            try:
                fastavro.parse_schema(_avro_json(schema_id, referenced), named)
            except Exception as exc:  # fastavro raises several unrelated types for a bad schema
                raise SchemaNotUsable(
                    "InvalidSchema",
                    f"schema id {schema_id}: a referenced schema is not valid Avro: {_short(exc)}",
                ) from None

    def _fetch(self, schema_id: int, call: Any, not_found: str) -> Any:
        """Run one client call and sort its errors into transient and permanent.

        `not_found` is the dead-letter reason when the registry says the thing does not exist.
        """
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return call()
        except SchemaRegistryError as exc:
            status, code = exc.http_status_code, exc.error_code
            if status == 404 and code in _NOT_FOUND_CODES:
                raise SchemaNotUsable(
                    "UnknownSchemaId", f"{not_found} (error code {code})"
                ) from None
            detail = f"HTTP {status}, error code {code}"
            if status in (401, 403):
                raise RegistryAccessDenied(
                    f"the Schema Registry refused our credentials fetching schema id "
                    f"{schema_id} ({detail}): check SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"
                ) from None
            # 5xx, 429, a proxy's 404 without a registry error code, ...: not the record's fault.
            raise RegistryUnavailable(
                f"the Schema Registry did not answer for schema id {schema_id} ({detail})",
                schema_id,
                status,
            ) from None
        except Exception as exc:
            # Refused, reset, timed out, TLS, a non-JSON page from a proxy: nothing the client
            # raises here proves the record bad, so it is held back, never dead-lettered.
            raise RegistryUnavailable(
                f"the Schema Registry is unreachable fetching schema id {schema_id} "
                f"({type(exc).__name__}: {_short(exc)})",
                schema_id,
            ) from None


def _avro_json(schema_id: int, schema: Any) -> Any:
    """The JSON of a registry `Schema`, or `SchemaNotUsable` when it is not Avro."""
    schema_type = schema.schema_type or "AVRO"
    if schema_type != "AVRO":
        raise SchemaNotUsable(
            "UnsupportedSchemaType",
            f"schema id {schema_id} is a {schema_type} schema; only Avro is supported",
        )
    try:
        return json.loads(schema.schema_str)
    except (TypeError, ValueError):
        raise SchemaNotUsable("InvalidSchema", f"schema id {schema_id} is not valid JSON") from None


def _short(exc: Exception, limit: int = 200) -> str:
    """The error's message, bounded, with any credentials of a URL in it masked."""
    text = _URL_USERINFO.sub("//***@", str(exc) or type(exc).__name__)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_URL_USERINFO = re.compile(r"//[^/@\s]*@")
