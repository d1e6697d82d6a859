"""Running the emulator: in a background thread for tests, or in the foreground for the CLI.

Both share `_Runtime`, which owns the listening socket, the open connections and the periodic
flush of the events file. With `tls` the socket speaks HTTPS, as AWS's endpoint does, with a
certificate from `consumer.testing.tls` that clients trust through `ca_file` (`AWS_CA_BUNDLE`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from consumer.testing.emulator.app import EmulatorApp, Stats
from consumer.testing.emulator.events_file import EventsFile
from consumer.testing.emulator.faults import Faults
from consumer.testing.emulator.http import Connections, HttpProtocol
from consumer.testing.tls import TlsMaterial, ensure_tls_material

log = logging.getLogger(__name__)

#: Buffered events reach the file at most this late (plus one flush's duration).
FLUSH_INTERVAL_S = 0.1
_START_TIMEOUT_S = 30.0

T = TypeVar("T")


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: the OS picks a free port; read it back from `url`.
    events_file: Path | None = None
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None  # Seeds the fault draws, for replayable runs.
    accepted_at: bool = False  # Add `acceptedAt` (when the answer left) to each events-file line.
    tls: bool = False  # Serve HTTPS (TLS 1.2+) instead of plain HTTP.
    # With `tls`: where the CA and server certificate are made (once) and kept, so clients can
    # trust a stable path; None: a temporary directory, removed when the emulator stops.
    tls_dir: Path | None = None


class _Runtime:
    """The emulator on one event loop; every method runs on that loop's thread."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.app = EmulatorApp(config.faults, seed=config.seed)
        self.port = 0
        self._connections = Connections()
        self._server: asyncio.Server | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.tls: TlsMaterial | None = None
        self._tls_tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        host, scheme = self.config.host, "https" if self.config.tls else "http"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}"

    def _ssl_context(self) -> ssl.SSLContext | None:
        """The server side of TLS; makes the certificates first if the directory has none."""
        if not self.config.tls:
            return None
        tls_dir = self.config.tls_dir
        if tls_dir is None:
            self._tls_tmp = tempfile.TemporaryDirectory(prefix="personalize-emulator-tls-")
            tls_dir = Path(self._tls_tmp.name)
        self.tls = ensure_tls_material(tls_dir)
        return self.tls.server_context()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: HttpProtocol(self.app.handle, self._connections),
                self.config.host,
                self.config.port,
                backlog=1024,
                ssl=self._ssl_context(),
            )
        except BaseException:
            self._remove_tls_tmp()
            raise
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        if self.config.events_file is not None:
            self.app.events_file = EventsFile(
                self.config.events_file, accepted_at=self.config.accepted_at
            )
        self._flusher = asyncio.create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                self.app.flush()
            except OSError:
                log.exception("could not write the emulator events file")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._connections.close_all()
        if self._server is not None:
            await self._server.wait_closed()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self.app.events_file is not None:
            self.app.events_file.close()
        self._remove_tls_tmp()

    def _remove_tls_tmp(self) -> None:
        if self._tls_tmp is not None:
            self._tls_tmp.cleanup()
            self._tls_tmp = None


class EmulatorServer:
    """The emulator on a background thread: for tests and in-process demos."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self._runtime = _Runtime(config or EmulatorConfig())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bind and return once the socket listens; raises if binding fails."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._run, args=(loop, started), name="personalize-emulator", daemon=True
        )
        thread.start()
        try:
            started.result(timeout=_START_TIMEOUT_S)
        except BaseException:
            thread.join()
            raise
        self._loop, self._thread = loop, thread

    def _run(
        self, loop: asyncio.AbstractEventLoop, started: concurrent.futures.Future[None]
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._runtime.start())
            except BaseException as error:
                started.set_exception(error)
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self._runtime.stop())
        finally:
            loop.close()

    @property
    def url(self) -> str:
        """Base URL for `endpoint_url=` or `AWS_ENDPOINT_URL_PERSONALIZE_EVENTS`."""
        return self._runtime.url

    @property
    def port(self) -> int:
        return self._runtime.port

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate (PEM) that HTTPS clients must trust (`verify=`, `AWS_CA_BUNDLE`);
        None without TLS. A temporary one is removed by `stop`."""
        tls = self._runtime.tls
        return tls.ca_file if tls is not None else None

    @property
    def faults(self) -> Faults:
        return self._runtime.app.faults

    def set_faults(self, **changes: Any) -> None:
        """Change some faults now; the next call (of any operation) sees them. Raises FaultError."""
        self._runtime.app.update_faults(changes)

    def stats(self) -> dict[str, int]:
        """Counters so far; still readable after `stop` (the final counts)."""
        return self._in_loop(lambda: self._runtime.app.stats.as_dict())

    def reset_stats(self) -> None:
        def reset() -> None:
            self._runtime.app.stats = Stats()

        self._in_loop(reset)

    def flush(self) -> None:
        """Write buffered events to the events file now (a no-op once stopped)."""
        if self._loop is not None:
            self._in_loop(self._runtime.app.flush)

    def stop(self) -> None:
        """Close the socket and all connections, then flush and close the events file."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def _in_loop(self, func: Callable[[], T]) -> T:
        """Run on the loop thread, so readers never see a half-handled request.

        Before start and after stop there is no other thread: run here (stats stay readable).
        """
        loop = self._loop
        if loop is None:
            return func()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(func())
            except BaseException as error:
                future.set_exception(error)

        loop.call_soon_threadsafe(call)
        return future.result(timeout=_START_TIMEOUT_S)


#: Told the URL and the CA file (None without TLS) once the socket listens.
OnReady = Callable[[str, Path | None], None]


def serve_forever(config: EmulatorConfig, on_ready: OnReady | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then shut down cleanly.

    `on_ready` gets the URL and the CA file once the socket listens (the CLI prints them for
    scripts to wait on).
    """
    asyncio.run(_serve(config, on_ready))


async def _serve(config: EmulatorConfig, on_ready: OnReady | None) -> None:
    runtime = _Runtime(config)
    await runtime.start()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stopping.set)
            handled.append(signum)
    try:
        if on_ready is not None:
            on_ready(runtime.url, runtime.tls.ca_file if runtime.tls is not None else None)
        await stopping.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await runtime.stop()
