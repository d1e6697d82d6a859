"""personalize-consumer: Kafka clickstream into Amazon Personalize PutEvents."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def _schemas_dir() -> Path:
    """The shipped schemas: packaged beside the modules in a wheel, else the source tree's.

    `schemas/` stays at the top of the repository; pyproject.toml maps it into the wheel as
    `consumer/schemas`, so an installed package finds its defaults without the repository.
    """
    packaged = Path(__file__).resolve().parent / "schemas"
    return packaged if packaged.is_dir() else packaged.parent.parent / "schemas"


SCHEMAS_DIR = _schemas_dir()
DEFAULT_SCHEMA_FILE = SCHEMAS_DIR / "interaction.avsc"
DEFAULT_MAPPING_FILE = SCHEMAS_DIR / "interaction.mapping.yaml"
