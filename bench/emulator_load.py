"""Throughput check for the emulator: `python bench/emulator_load.py --help`.

Starts the emulator in its own process (unless `--url` names one), then hammers it from worker
processes, each with threads holding their own boto3 client (or, with `--raw`, as many bare
keep-alive connections on one asyncio loop, to see the emulator's own ceiling, not boto3's).
Reports calls/s, events/s and how busy the emulator process was, so one can tell which side
is the bottleneck. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_FAKE_AUTH = {
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20240101/us-east-1/personalize/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00"
    ),
    "X-Amz-Date": "20240101T000000Z",
    "Content-Type": "application/json",
}


@dataclass(frozen=True)
class _Job:
    url: str
    threads: int
    start_at: float  # Wall clock: clients are built before it, so set-up is not measured.
    seconds: float
    events_per_call: int
    raw: bool


def _events(count: int) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"eventType": "click", "sentAt": now, "itemId": f"item-{i}", "properties": '{"n": 1}'}
        for i in range(count)
    ]


def _wait_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def _boto3_loop(job: _Job) -> int:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "personalize-events",
        region_name="us-east-1",
        endpoint_url=job.url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=1),
    )
    events = _events(job.events_per_call)
    calls = 0
    _wait_until(job.start_at)
    end = job.start_at + job.seconds
    while time.time() < end:
        client.put_events(trackingId="t", userId="u", sessionId="s", eventList=events)
        calls += 1
    return calls


async def _raw_connection(job: _Job, request: bytes) -> int:
    parts = urlsplit(job.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    calls = 0
    _wait_until(job.start_at)  # Blocks the loop, but before any measured work starts.
    end = job.start_at + job.seconds
    while time.time() < end:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"emulator answered {head.splitlines()[0]!r}")
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)
        calls += 1
    writer.close()
    return calls


async def _raw_connections(job: _Job) -> int:
    """Bare keep-alive HTTP on one asyncio loop: far cheaper per call than boto3 or http.client."""
    session = {"trackingId": "t", "userId": "u", "sessionId": "s"}
    body = json.dumps({**session, "eventList": _events(job.events_per_call)}).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in _FAKE_AUTH.items())
    request = (
        f"POST /events HTTP/1.1\r\nHost: emulator\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    counts = await asyncio.gather(*(_raw_connection(job, request) for _ in range(job.threads)))
    return sum(counts)


def _worker(job: _Job) -> int:
    """One process: `threads` clients calling from `start_at` for `seconds`."""
    if job.raw:
        return asyncio.run(_raw_connections(job))
    with ThreadPoolExecutor(max_workers=job.threads) as threads:
        return sum(threads.map(_boto3_loop, [job] * job.threads))


def _cpu_seconds(pid: int) -> float | None:
    """User+system CPU of a process, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_emulator() -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "consumer.testing.emulator", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("emulator listening on "):
        process.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/emulator_load.py")
    parser.add_argument("--url", help="an already running emulator (default: start one)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="clients per process")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--events-per-call", type=int, default=10)
    parser.add_argument(
        "--raw", action="store_true", help="bare asyncio HTTP connections instead of boto3 threads"
    )
    parser.add_argument(
        "--setup-seconds", type=float, default=3.0, help="time allowed to build the clients"
    )
    args = parser.parse_args(argv)

    process, url = (None, args.url) if args.url else _start_emulator()
    try:
        start_at = time.time() + args.setup_seconds
        job = _Job(url, args.threads, start_at, args.seconds, args.events_per_call, args.raw)
        with ProcessPoolExecutor(max_workers=args.processes) as pool:
            results = pool.map(_worker, [job] * args.processes)
            _wait_until(start_at)
            cpu_before = _cpu_seconds(process.pid) if process else None
            _wait_until(start_at + args.seconds)
            cpu_after = _cpu_seconds(process.pid) if process else None
            calls = sum(results)
    finally:
        if process is not None:
            process.terminate()
            process.wait()
    elapsed = args.seconds
    client = "raw HTTP connection(s)" if args.raw else "boto3 client thread(s)"
    print(
        f"{args.processes} process(es) x {args.threads} {client}, "
        f"{args.events_per_call} event(s)/call, {elapsed:.1f} s"
    )
    print(
        f"calls/s: {calls / elapsed:,.0f}   events/s: {calls * args.events_per_call / elapsed:,.0f}"
    )
    if cpu_before is not None and cpu_after is not None:
        busy = (cpu_after - cpu_before) / elapsed
        print(f"emulator process CPU: {busy:.0%} of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
