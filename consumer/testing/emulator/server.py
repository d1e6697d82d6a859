"""Running the emulator: in a background thread for tests, or in the foreground for the CLI.

Both share `_Runtime`, which owns the listening socket, the open connections and the periodic
flush of the events file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
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


class _Runtime:
    """The emulator on one event loop; every method runs on that loop's thread."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.app = EmulatorApp(config.faults, seed=config.seed)
        self.port = 0
        self._connections = Connections()
        self._server: asyncio.Server | None = None
        self._flusher: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: HttpProtocol(self.app.handle, self._connections),
            self.config.host,
            self.config.port,
            backlog=1024,
        )
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
    def faults(self) -> Faults:
        return self._runtime.app.faults

    def set_faults(self, **changes: Any) -> None:
        """Change some faults now; the next PutEvents call sees them. Raises FaultError."""
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


def serve_forever(config: EmulatorConfig, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then shut down cleanly.

    `on_ready` gets the URL once the socket listens (the CLI prints it for scripts to wait on).
    """
    asyncio.run(_serve(config, on_ready))


async def _serve(config: EmulatorConfig, on_ready: Callable[[str], None] | None) -> None:
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
            on_ready(runtime.url)
        await stopping.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await runtime.stop()
