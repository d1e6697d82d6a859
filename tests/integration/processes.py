"""The consumer as a real process (`python -m consumer run`), and what a deployment of it left
behind in Kafka: the group's commits, end offsets, dead-letters, members."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException, Message
from confluent_kafka.admin import AdminClient

from tests.integration.support import committed, end_offsets, read_all, wait_for


@dataclass(frozen=True)
class Deployment:
    """One consumer group reading one topic into one endpoint; `env()` is what `consumer run`
    reads, and the rest reports the group's progress as a user would check it."""

    bootstrap: str
    topic: str
    partitions: int
    dead_letter: str
    endpoint: str
    group: str = field(default_factory=lambda: f"it-delivery-{uuid.uuid4().hex[:8]}")

    def env(self, **settings: object) -> dict[str, str]:
        """The environment for `consumer run`; keyword settings are upper-cased variable names,
        e.g. `env(batch_linger_ms=2000)`."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return inherited | {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_GROUP_ID": self.group,
            "SOURCE_TOPICS": self.topic,
            "DEAD_LETTER_TOPIC": self.dead_letter,
            "PERSONALIZE_TRACKING_ID": "tracker-it",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "PYTHONUNBUFFERED": "1",
            "METRICS_PORT": "0",  # several consumers share this machine
            **{name.upper(): str(value) for name, value in settings.items()},
        }

    def committed(self) -> dict[int, int]:
        return committed(self.bootstrap, self.group, self.topic, self.partitions)

    def end_offsets(self) -> dict[int, int]:
        return end_offsets(self.bootstrap, self.topic, self.partitions)

    def caught_up(self) -> bool:
        """Every partition committed to its end; False (not an error) while the broker is away."""
        try:
            return self.committed() == self.end_offsets()
        except KafkaException:
            return False

    def dead_letters(self) -> list[Message]:
        return read_all(self.bootstrap, self.dead_letter)

    def partitions_per_member(self) -> list[int]:
        """How many partitions each member of the group owns, as its coordinator sees it
        (empty while the broker cannot say)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            future = admin.describe_consumer_groups([self.group], request_timeout=10)[self.group]
            members = future.result().members
        except KafkaException:
            return []
        return sorted(len(m.assignment.topic_partitions) for m in members)


class ConsumerProcess:
    """`python -m consumer run` as a child process; stdout (JSON logs) and stderr go to files, so
    a chatty run can never block on a full pipe."""

    def __init__(self, env: Mapping[str, str], logs: Path, until_caught_up: bool = False) -> None:
        command = [sys.executable, "-m", "consumer", "run"]
        if until_caught_up:
            command.append("--until-caught-up")
        self.stdout_path, self.stderr_path = logs.with_suffix(".out"), logs.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(command, env=dict(env), stdout=out, stderr=err)

    def send(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def exit_code(self, within_s: float) -> int:
        """Wait for the exit; fail (with its stderr) if it takes longer than `within_s`."""
        try:
            return self.popen.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"consumer pid {self.popen.pid} did not exit within {within_s}s; "
                f"stderr: {self.stderr_tail()}"
            ) from None

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """`wait_for`, failing at once (with its stderr) if the process exits meanwhile."""

        def check() -> bool:
            code = self.popen.poll()
            if code is not None:
                raise AssertionError(
                    f"consumer exited with {code} before {what}; stderr: {self.stderr_tail()}"
                )
            return condition()

        wait_for(check, timeout_s, what)

    def kill(self) -> None:
        """SIGKILL: no draining, no commit, like a crashed pod."""
        self.popen.kill()
        self.popen.wait(30)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr_tail(self) -> str:
        """The end of stderr, for assertion messages."""
        return self.stderr()[-4000:]


class Consumers:
    """Starts consumer processes for a test and kills whatever is still running at the end."""

    def __init__(self, logs_dir: Path) -> None:
        self._logs_dir = logs_dir
        self._started: list[ConsumerProcess] = []

    def start(self, env: Mapping[str, str], until_caught_up: bool = False) -> ConsumerProcess:
        logs = self._logs_dir / f"consumer-{len(self._started)}"
        process = ConsumerProcess(env, logs, until_caught_up)
        self._started.append(process)
        return process

    def run_until_caught_up(self, env: Mapping[str, str], within_s: float) -> ConsumerProcess:
        """`run --until-caught-up` to its end; fail unless it exits 0 within `within_s`."""
        process = self.start(env, until_caught_up=True)
        code = process.exit_code(within_s)
        assert code == 0, f"exit code {code}; stderr: {process.stderr_tail()}"
        return process

    def close(self) -> None:
        for process in self._started:
            if process.popen.poll() is None:
                process.kill()


@dataclass
class OnTerminal:
    """A command run with stderr on a terminal (a pseudo-terminal), as a person runs it."""

    returncode: int
    stdout: str
    terminal: str


def run_on_terminal(argv: list[str], env: Mapping[str, str], timeout_s: float) -> OnTerminal:
    """Run `argv` with stdout piped and stderr on a pseudo-terminal; what the terminal showed."""
    controller, terminal = os.openpty()
    # A terminal of 120 columns and 40 rows: a fresh pseudo-terminal is 0 by 0.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    shown = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the last holder of the terminal closed it
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            argv,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=timeout_s,
        )
    finally:
        os.close(terminal)
        reader.join(10)
        os.close(controller)
    return OnTerminal(done.returncode, done.stdout, shown.decode(errors="replace"))
