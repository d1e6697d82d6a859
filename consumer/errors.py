"""The one error hierarchy: what went wrong decides what the consumer does, by type alone.

- `ConfigError`: a setting or file is wrong. Found before connecting anywhere; exit 2.
- `TransientError`: a dependency can't help right now (the Schema Registry is down). The record is
  fine: it is held back and tried again, never dead-lettered.
- `FatalError`: only an operator can fix it (AWS refuses our credentials, the dead-letter topic
  refuses writes, Kafka refuses us). The consumer stops fetching, drains, commits what is done,
  and exits 3 with the message, which says what to fix.

A record that can never succeed is not an exception at all: it travels as a `records.Failure`
value to the dead-letter topic.
"""

from __future__ import annotations


class ConsumerError(Exception):
    """Root of every error the consumer raises on purpose."""


class ConfigError(ConsumerError):
    """Settings or files that can't work; `problems` names each one (never a secret's value)."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class TransientError(ConsumerError):
    """A stage can't work right now: retry the record later; never a reason to dead-letter."""


class FatalError(ConsumerError):
    """Only an operator can fix this: stop, commit what is done, exit 3 saying what to fix."""


class AwsRefused(FatalError):
    """Personalize refuses the calls themselves: credentials, permissions, an unknown tracker."""


class DeadLetterRefused(FatalError):
    """The dead-letter topic refuses records for good (missing, authorization, size)."""


class KafkaRefused(FatalError):
    """Kafka refuses this client (authentication, authorization, TLS) or reported a fatal error."""


class KafkaUnreachable(FatalError):
    """No broker answered at start-up within KAFKA_STARTUP_TIMEOUT_S."""


class RegistryAccessDenied(FatalError):
    """The Schema Registry refuses our credentials: SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO."""
