"""personalize-consumer: Kafka clickstream into Amazon Personalize PutEvents."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

#: The shipped schemas live beside the package in the source tree (and the image).
SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
DEFAULT_SCHEMA_FILE = SCHEMAS_DIR / "interaction.avsc"
