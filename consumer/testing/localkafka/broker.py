"""A real single-node Apache Kafka 4.x broker (KRaft, combined roles) from the official jars.

For the integration tests and the demo on machines without Docker: jars come once from Maven
Central via ``mvn``; the broker is a ``java`` child that dies with this process. Stdlib only,
plus a lazy ``confluent_kafka`` import to confirm the broker really answers.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from consumer.testing.localkafka.errors import LocalKafkaError, StartError, UnavailableError
from consumer.testing.localkafka.security import SecureListeners, listener_properties

DEFAULT_VERSION = "4.1.1"
_log = logging.getLogger(__name__)

# The slf4j binding comes with all its dependencies excluded so Kafka's own slf4j-api/log4j-core
# versions win; without a binding slf4j falls back to NOP and the broker logs nothing at all.
_POM = """<project><modelVersion>4.0.0</modelVersion><groupId>local</groupId>
<artifactId>kafka-jars</artifactId><version>1</version><packaging>pom</packaging><dependencies>
<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
  <version>{version}</version></dependency>
<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
  <version>2.24.3</version><exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId>
  </exclusion></exclusions></dependency>
</dependencies></project>
"""
_COPY_DEPS = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

_LOG4J2 = """status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""

# Single-node settings for a small CI box: few threads, one-partition internal topics, and a
# short broker session so that after a hard kill the stale registration expires quickly.
_SERVER_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{c}
{listeners}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions={partitions}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=8388608
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
"""
# Small heap and serial GC: fewer threads competing on 2-core CI boxes.
_JVM_FLAGS = ("-Xms128m", "-XX:+UseSerialGC", "-Djava.awt.headless=true")

# Runs in a fresh single-threaded interpreter (unlike a preexec_fn in our threaded process):
# asks the kernel to SIGKILL it, and across exec the JVM, when its parent dies.
_LAUNCHER = (
    "import ctypes,os,sys\n"
    "ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"  # PR_SET_PDEATHSIG, SIGKILL
    "os.getppid() == int(sys.argv[1]) or os._exit(1)\n"  # parent already gone
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def default_cache_root() -> Path:
    """Where fetched jars live: shared by tests and the demo so the download happens once."""
    if env := os.environ.get("PERSONALIZE_CONSUMER_CACHE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "personalize-consumer"


def _require(tool: str, why: str) -> str:
    if path := shutil.which(tool):
        return path
    raise UnavailableError(
        f"'{tool}' not found on PATH; {why}. Install Java 17+ and Maven 3, "
        "or point at an existing broker with KAFKA_BOOTSTRAP_SERVERS."
    )


def ensure_kafka_jars(version: str = DEFAULT_VERSION, cache_dir: Path | None = None) -> Path:
    """Return ``<cache_dir or default_cache_root()>/kafka-<version>/libs``, fetching with Maven.

    The fetch goes to a temp dir renamed into place: a killed download leaves no half cache."""
    home = (cache_dir or default_cache_root()) / f"kafka-{version}"
    libs, marker = home / "libs", f"libs/kafka_2.13-{version}.jar"
    if (home / marker).is_file():
        return libs
    _require("java", "Maven and the Kafka broker need it")
    mvn = _require("mvn", f"it is needed once to fetch the Kafka {version} jars into {libs}")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "a+b") as lock:  # racing processes: only one runs mvn
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (home / marker).is_file():
            return libs
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=home))
        try:
            (tmp / "pom.xml").write_text(_POM.format(version=version))
            cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(tmp / "pom.xml"), _COPY_DEPS]
            cmd.append(f"-DoutputDirectory={tmp / 'libs'}")
            _log.info("fetching Kafka %s jars with Maven into %s", version, libs)
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if res.returncode != 0 or not (tmp / marker).is_file():
                raise UnavailableError(
                    f"mvn failed to fetch org.apache.kafka:kafka_2.13:{version} (exit "
                    f"{res.returncode}); is Maven Central reachable?\n{res.stdout[-2000:]}"
                )
            shutil.rmtree(libs, ignore_errors=True)  # a leftover without the marker jar
            os.replace(tmp / "libs", libs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return libs


def _new_cluster_id() -> str:
    """Like Kafka's Uuid.randomUuid(): an id starting with '-' would parse as a CLI flag."""
    while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()).startswith("-"):
        pass
    return cid.rstrip("=")


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: each socket stays bound until all are picked."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.create_server(("127.0.0.1", 0))) for _ in range(count)]
        return [int(s.getsockname()[1]) for s in socks]


def _port_open(host: str, port: int) -> bool:
    with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_for_broker(
    bootstrap_servers: str, timeout: float = 60.0, check: Callable[[], None] | None = None
) -> None:
    """Block until a broker lists itself in metadata (an open port is not enough: it must be
    registered and unfenced); TimeoutError after ``timeout`` s. ``check`` may raise to bail out."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    admin: AdminClient | None = None  # created once something listens: no connect-error spam
    last = "nothing listens there"
    while (remaining := deadline - time.monotonic()) > 0:
        if check:
            check()
        if admin is None and not _port_open(host.strip("[]") or "127.0.0.1", int(port)):
            time.sleep(0.1)
            continue
        admin = admin or AdminClient({"bootstrap.servers": bootstrap_servers}, logger=_log)
        try:
            if admin.list_topics(timeout=min(2.0, remaining)).brokers:
                return
            last = "metadata lists no brokers"
        except KafkaException as exc:
            last = str(exc)
    raise TimeoutError(f"broker {bootstrap_servers} not ready after {timeout:.0f}s: {last}")


# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so every broker is
# started from this one long-lived worker: a restart() from a short-lived test thread would
# otherwise be killed as soon as that thread finished.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="localkafka-spawn")


def _spawn(cmd: list[str], out: IO[bytes], cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` to die with us; its own session keeps a terminal's Ctrl-C for us to handle."""
    if sys.platform.startswith("linux"):
        cmd = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *cmd]

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=cwd, start_new_session=True
        )

    return _spawner.submit(popen).result()


_live: set[LocalKafka] = set()


@atexit.register
def _stop_all() -> None:
    for kafka in list(_live):
        kafka.stop()


@dataclass(eq=False)
class LocalKafka:
    """One broker+controller JVM; ports and data survive :meth:`restart`. ``secure=True`` adds
    SASL_SSL and mutual-TLS listeners (see :attr:`security`); ``bootstrap_servers`` is PLAINTEXT."""

    version: str = DEFAULT_VERSION
    workdir: Path | None = None
    partitions_default: int = 1
    startup_timeout: float = 60.0
    heap: str = "512m"
    cache_dir: Path | None = None
    secure: bool = False
    broker_port: int = field(default=0, init=False)
    controller_port: int = field(default=0, init=False)
    security: SecureListeners | None = field(default=None, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _own_workdir: bool = field(default=False, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        if not self.broker_port:
            raise LocalKafkaError("broker not started")
        return f"127.0.0.1:{self.broker_port}"

    @property
    def log_file(self) -> Path:
        """Broker log (log4j); the JVM's own stdout/stderr go to ``server.out`` beside it."""
        return self._dir / "broker.log"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise LocalKafkaError("broker not started")
        return self.workdir

    def start(self) -> LocalKafka:
        """Fetch jars if needed, format storage on first start, launch and wait until ready."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        libs = ensure_kafka_jars(self.version, self.cache_dir)
        java = _require("java", "the Kafka broker runs on it")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="personalize-kafka-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.broker_port:
            self.broker_port, self.controller_port, sasl_ssl, ssl = _free_ports(4)
            if self.secure:
                self.security = SecureListeners(sasl_ssl, ssl, self._dir / "tls")
        _live.add(self)
        cfg, data = self._dir / "server.properties", self._dir / "data"
        c, n = self.controller_port, self.partitions_default
        listeners = listener_properties(self.broker_port, c, self.security)
        cfg.write_text(_SERVER_PROPERTIES.format(c=c, listeners=listeners, data=data, partitions=n))
        (self._dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file))
        java_cmd = [java, f"-Dlog4j2.configurationFile={self._dir / 'log4j2.properties'}"]
        java_cmd += ["-cp", str(libs / "*")]
        if not (data / "meta.properties").exists():
            fmt = [*java_cmd, "kafka.tools.StorageTool", "format", "--standalone"]
            fmt += ["-t", _new_cluster_id(), "-c", str(cfg)]
            fmt += self.security.format_args() if self.security else []
            res = subprocess.run(fmt, capture_output=True, text=True, timeout=120)
            if res.returncode != 0:
                raise StartError(f"kafka-storage format failed:\n{res.stdout}{res.stderr}")
        began = time.monotonic()
        java_cmd[1:1] = [f"-Xmx{self.heap}", *_JVM_FLAGS]
        with open(self._dir / "server.out", "ab") as out:
            self._proc = _spawn([*java_cmd, "kafka.Kafka", str(cfg)], out, self._dir)
        try:
            wait_for_broker(self.bootstrap_servers, self.startup_timeout, self._check_alive)
            if self.security is not None:
                self.security.wait_ready(self._check_alive)
        except (TimeoutError, StartError) as exc:
            tail = self._log_tail()
            self._kill()
            raise StartError(f"Kafka {self.version} did not start: {exc}\n{tail}") from None
        took = time.monotonic() - began
        _log.info("Kafka %s ready at %s in %.1fs", self.version, self.bootstrap_servers, took)
        return self

    def stop(self, remove_data: bool = True) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL); safe to call any number of times.

        With ``remove_data=False`` a later :meth:`start` resumes on the same ports and data.
        """
        self._kill(graceful=True)
        if remove_data:
            _live.discard(self)
            if self._own_workdir and self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir, self._own_workdir = None, False
                self.broker_port = self.controller_port = 0
                self.security = None

    def restart(self, graceful: bool = True) -> None:
        """Bounce the broker on the same ports and data; ``graceful=False`` simulates a crash."""
        self._kill(graceful=graceful)
        self.start()

    def _kill(self, graceful: bool = True, timeout: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if graceful:
            proc.terminate()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
                return
        proc.kill()
        proc.wait()

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise StartError(f"broker process exited with code {self._proc.returncode}")

    def _log_tail(self, chars: int = 4000) -> str:
        parts = []
        for name in ("server.out", "broker.log"):
            with suppress(OSError):
                if text := (self._dir / name).read_text(errors="replace").strip():
                    parts.append(f"--- {self._dir / name} (tail) ---\n{text[-chars:]}")
        return "\n".join(parts)


@contextmanager
def start_local_kafka(
    version: str = DEFAULT_VERSION, workdir: Path | None = None, partitions_default: int = 1
) -> Iterator[LocalKafka]:
    """Run a broker for the duration of a ``with`` block."""
    kafka = LocalKafka(version=version, workdir=workdir, partitions_default=partitions_default)
    try:
        yield kafka.start()
    finally:
        kafka.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m consumer.testing.localkafka``: a throwaway broker for trying things by hand."""
    parser = argparse.ArgumentParser(
        prog="python -m consumer.testing.localkafka", description=__doc__
    )
    parser.add_argument("--version", default=DEFAULT_VERSION, help="Apache Kafka version")
    parser.add_argument("--workdir", type=Path, help="keep broker data here (default: temp)")
    parser.add_argument("--partitions", type=int, default=1, help="num.partitions default")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with start_local_kafka(args.version, args.workdir, args.partitions) as kafka:
            print(f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap_servers}", flush=True)
            print(f"# broker log: {kafka.log_file}; Ctrl-C to stop", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
