"""Fixtures for the Schema Registry tests: an in-test registry over real HTTP, and a factory of
wire-format decoders against it that closes them afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from consumer.decode import WireFormatDecoder
from consumer.decode.registry import SchemaRegistry
from tests.registry_server import RegistryServer


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


@pytest.fixture
def connect() -> Iterator[Callable[..., WireFormatDecoder]]:
    """Make decoders against a registry URL; closes them (their HTTP clients) afterwards."""
    made: list[WireFormatDecoder] = []

    def make(
        url: str,
        reader: dict[str, Any] | None = None,
        basic_auth: str | None = None,
        timeout_s: float = 5.0,
        unknown_id_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> WireFormatDecoder:
        schemas = SchemaRegistry.connect(url, basic_auth, timeout_s=timeout_s)
        decoder = WireFormatDecoder(
            schemas, reader, unknown_id_ttl_s=unknown_id_ttl_s, retry_after_s=1.0, clock=clock
        )
        made.append(decoder)
        return decoder

    yield make
    for decoder in made:
        decoder.close()
