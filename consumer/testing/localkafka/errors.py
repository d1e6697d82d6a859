"""Why a local broker could not be had: the machine can't run one, or it failed to start."""

from __future__ import annotations


class LocalKafkaError(RuntimeError):
    """Base class so callers can treat every local-broker problem alike."""


class UnavailableError(LocalKafkaError):
    """No java/mvn, or Maven cannot fetch the jars: the machine can't run a local broker."""


class StartError(LocalKafkaError):
    """The broker did not come up although everything was there: a real failure."""
