"""When a record is done, and when its offset may be committed (the heart of at-least-once)."""

from __future__ import annotations

from consumer.commit.committer import Committer
from consumer.commit.offsets import OffsetTracker

__all__ = ["Committer", "OffsetTracker"]
