"""Decoded records to Personalize requests, as the mapping file says, validated by botocore's model.

`file.py` reads and checks the mapping file into a plan (`plan.py`, against the Avro schema);
`mapper.py` compiles the plan (`fields.py`) and maps each record; `validation.py` holds the
model's rules, which the local emulator shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from consumer.mapping.file import MappingError, load_file, load_plan
from consumer.mapping.mapper import Mapper, derived_event_id
from consumer.mapping.operations import EntryMapper, RoutePlan

__all__ = [
    "EntryMapper",
    "Mapper",
    "MappingError",
    "RoutePlan",
    "derived_event_id",
    "load_file",
    "load_mapping",
    "load_plan",
]


def load_mapping(path: Path, writer_schema: dict[str, Any], environ: Mapping[str, str]) -> Mapper:
    """Read, check and compile a mapping file for records of `writer_schema`."""
    return Mapper(load_plan(path, writer_schema, environ))
