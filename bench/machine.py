"""Where a run happened: the machine, the package versions and the measured `consumer` source,
stored in the JSON so results from different runs can be compared."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def machine(bootstrap_kind: str) -> dict[str, Any]:
    """CPU, Python, platform and the versions of the packages on the measured path."""
    import boto3
    import botocore
    import confluent_kafka
    import fastavro

    from consumer.testing.localkafka import DEFAULT_VERSION

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "consumer_source": consumer_source(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": f"Apache Kafka {DEFAULT_VERSION} (local)"
        if bootstrap_kind == "local"
        else "given",
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "fastavro": fastavro.__version__,
    }


def consumer_source() -> str:
    """Where the measured `consumer` package came from, and its commit when it is a checkout."""
    import consumer

    package = Path(consumer.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(package)
    return f"{package} at {commit}" + (" with uncommitted changes" if changed else "")
