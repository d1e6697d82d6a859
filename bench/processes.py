"""Processes seen from outside: CPU and RSS from /proc, the broker's pid, and running a child to
its end with its own resource usage (`wait4`), so nothing is measured from inside the consumer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from common import BenchError

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a live (or not yet reaped) process; None if it is gone."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_mb(pid: int | None) -> float | None:
    """Resident set size now, in MB; None if the process is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def find_broker_pid(bootstrap: str, workdir: Path | None) -> int | None:
    """The broker JVM on this machine: by its work directory, else by its listener port."""
    port = bootstrap.split(",")[0].rsplit(":", 1)[-1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in args if a]
        if "kafka.Kafka" not in text:
            continue
        if workdir is not None and any(str(workdir) in a for a in text):
            return int(proc.name)
        properties = Path(text[-1])
        try:
            listens = re.search(rf"^listeners=.*:{port}\b", properties.read_text(), re.M)
        except OSError:
            continue
        if listens and workdir is None:
            return int(proc.name)
    return None


class Watcher(Protocol):
    """What watches a child while it runs (the `Monitor`): told its pid, told when it has exited
    (before it is reaped, while /proc still shows its main thread), then told to stop."""

    def start(self, consumer_pid: int) -> None: ...

    def exited(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Exited:
    """A child process that ran to the end, with its own resource usage (from `wait4`)."""

    code: int
    wall_s: float
    cpu_s: float
    system_cpu_s: float
    max_rss_mb: float
    log_tail: str
    terminated: bool


def run_process(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    monitor: Watcher,
    during: Callable[[], None] | None = None,
    finished: Callable[[], bool] | None = None,
    timeout_s: float = 3600.0,
) -> Exited:
    """Run `command` to its end; `during` runs meanwhile, SIGTERM once `finished()` holds."""
    started = time.monotonic()
    with log_path.open("w") as out:
        # Not in the repository: `python -m consumer` must import the installed package (or
        # PYTHONPATH's), not whatever the working directory holds.
        process = subprocess.Popen(
            command, env=env, cwd=log_path.parent, stdout=out, stderr=subprocess.STDOUT
        )
    monitor.start(process.pid)
    terminated = timed_out = False
    try:
        if during is not None:
            during()
        while True:
            # WNOWAIT: the child stays a zombie until `wait4`, so the watcher can read what
            # /proc keeps of it first; this only delays the reaping, not the exit.
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                monitor.exited()
                _pid, status, usage = os.wait4(process.pid, 0)
                break
            overdue = time.monotonic() - started > timeout_s
            if not terminated and ((finished is not None and finished()) or overdue):
                process.send_signal(signal.SIGTERM)
                terminated, timed_out = True, overdue
            elif overdue and time.monotonic() - started > timeout_s + 60:
                process.kill()
            time.sleep(0.02)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        monitor.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    tail = log_path.read_text(errors="replace")[-3000:]
    if timed_out:
        raise BenchError(f"{command[2:5]} did not finish in {timeout_s:.0f} s\n{tail}")
    return Exited(
        code=process.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        system_cpu_s=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        log_tail=tail,
        terminated=terminated,
    )
