"""The local PutEvents endpoint as its own process, and the monitor that polls its counters (and
the processes' CPU and RSS) while a consumer runs: throughput is what the endpoint accepted."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common import BenchError
from processes import cpu_seconds, rss_mb
from threadcpu import ThreadCpu


class StatsClient:
    """Keep-alive GETs of the emulator's counters (over HTTPS too, trusting `ca_file`)."""

    def __init__(self, url: str, ca_file: Path | None = None) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_file)
            self._connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=10, context=context
            )
        else:
            self._connection = http.client.HTTPConnection(host, port, timeout=10)

    def get(self) -> dict[str, int]:
        self._connection.request("GET", "/_emulator/stats")
        response = self._connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise BenchError(f"emulator stats answered {response.status}")
        stats: dict[str, int] = json.loads(body)
        return stats

    def close(self) -> None:
        self._connection.close()


class Endpoint:
    """`python -m consumer emulator` in its own process, appending accepted events to a file,
    each line with its `acceptedAt` (when the answer left, after the injected latency).

    With `tls_dir`, it serves HTTPS (`--tls --tls-dir`), as AWS does: the certificates are made
    there by the first endpoint and reused by the next ones, and `ca_file` is the CA it printed
    on its second line, for `AWS_CA_BUNDLE`."""

    def __init__(
        self,
        latency_ms: float,
        events_file: Path | None,
        log_path: Path,
        tls_dir: Path | None = None,
    ) -> None:
        command = [sys.executable, "-m", "consumer", "emulator", "--port", "0"]
        command += ["--latency-ms", f"{latency_ms:g}"]
        if events_file is not None:
            command += ["--events-file", str(events_file), "--accepted-at"]
        if tls_dir is not None:
            command += ["--tls", "--tls-dir", str(tls_dir)]
        with log_path.open("w") as err:
            self.process = subprocess.Popen(
                command, cwd=log_path.parent, stdout=subprocess.PIPE, stderr=err, text=True
            )
        self.url = self._line("emulator listening on ", log_path)
        self.ca_file: Path | None = None
        if tls_dir is not None:
            self.ca_file = Path(self._line("emulator CA bundle: ", log_path))

    def _line(self, prefix: str, log_path: Path) -> str:
        """The last word of the next stdout line, which must start with `prefix`."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith(prefix):
            self.process.kill()
            self.process.wait()
            why = log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"emulator did not start: {line!r}\n{why}")
        return line.rsplit(" ", 1)[1]

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    def stats_client(self) -> StatsClient:
        return StatsClient(self.url, self.ca_file)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> dict[str, int]:
        client = self.stats_client()
        try:
            return client.get()
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: the emulator flushes and closes its events file, then exits."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass(frozen=True)
class Sample:
    """The endpoint's counters at one moment, and the CPU seconds used so far by each process."""

    t: float  # epoch seconds, midpoint of the stats request
    events: int
    calls: int
    consumer_cpu: float | None
    endpoint_cpu: float | None
    broker_cpu: float | None


class Monitor:
    """Polls the endpoint's counters (and the processes' CPU) while a consumer runs.

    Keeps a sample whenever the accepted count changed, plus the last one before each change, so
    the window and the per-second timelines are exact to one poll without keeping every sample.
    The consumer's threads' CPU is read only every `threads_every_s` (see `ThreadCpu`).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        broker_pid: int | None,
        poll_s: float = 0.02,
        rss_every_s: float = 1.0,
        threads_every_s: float = 1.0,
    ) -> None:
        self._endpoint, self._broker_pid = endpoint, broker_pid
        self._poll_s, self._rss_every_s = poll_s, rss_every_s
        self._threads_every_s = threads_every_s
        self.samples: list[Sample] = []
        self.rss: list[tuple[float, float, int]] = []  # (epoch s, MB, events accepted so far)
        self.events = 0
        self.consumer_pid: int | None = None
        self.threads: ThreadCpu | None = None
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)

    def start(self, consumer_pid: int) -> None:
        self.consumer_pid = consumer_pid
        self.threads = ThreadCpu(consumer_pid)
        self._thread.start()

    def exited(self) -> None:
        """The consumer has exited and is not reaped yet: its main thread's CPU, complete."""
        if self.threads is not None:
            self.threads.final()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _sample(self, client: StatsClient) -> Sample:
        before = time.time()
        stats = client.get()
        after = time.time()
        return Sample(
            (before + after) / 2,
            stats["accepted_events"],
            stats["accepted_calls"],
            cpu_seconds(self.consumer_pid),
            cpu_seconds(self._endpoint.pid),
            cpu_seconds(self._broker_pid),
        )

    def _run(self) -> None:
        client = self._endpoint.stats_client()
        previous: Sample | None = None
        next_rss = next_threads = 0.0
        try:
            while True:
                stopping = self._stopping.is_set()  # one last sample after the stop request
                sample = self._sample(client)
                if previous is None or sample.events != previous.events:
                    if previous is not None and self.samples[-1] is not previous:
                        self.samples.append(previous)
                    self.samples.append(sample)
                previous = sample
                self.events = sample.events
                if sample.t >= next_rss and (mb := rss_mb(self.consumer_pid)) is not None:
                    self.rss.append((sample.t, mb, sample.events))
                    next_rss = sample.t + self._rss_every_s
                if sample.t >= next_threads and self.threads is not None:
                    self.threads.read()  # a no-op once the consumer has exited
                    next_threads = sample.t + self._threads_every_s
                if stopping:
                    return
                self._stopping.wait(self._poll_s)
        except BaseException as exc:
            self.error = exc
        finally:
            client.close()

    def window(self) -> tuple[Sample, Sample] | None:
        """From the last sample before the first acceptance to the first one with all of them."""
        samples = self.samples
        if not samples or samples[-1].events == 0:
            return None
        zeros = [s for s in samples if s.events == 0]
        first = zeros[-1] if zeros else samples[0]
        last = next(s for s in samples if s.events == samples[-1].events)
        return first, last
