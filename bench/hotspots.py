"""Aggregate a py-spy raw profile by function: `python bench/hotspots.py RAW_FILE`.

py-spy's raw format (`py-spy record --format raw`) has one line per distinct stack,
`root;...;leaf COUNT`, each frame `function (file:line)`. Recorded without `--idle`, threads
blocked in the OS (waiting on a socket, a lock or the GIL) are left out, so a sample is a moment
a thread was on a CPU. Self share: the function was the leaf. Total share: it was anywhere on the
stack (counted once per stack).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @property
    def label(self) -> str:
        return f"{self.function} ({self.file})"

    @property
    def package(self) -> str:
        """Top-level package (or stdlib module) the frame's file belongs to."""
        path = self.file.replace("\\", "/")
        for marker in ("site-packages/", "/lib/python3"):
            if marker in path:
                path = path.split(marker, 1)[1]
                if marker == "/lib/python3":
                    path = path.split("/", 1)[1] if "/" in path else path
                break
        head = path.split("/", 1)[0]
        return head.removesuffix(".py") or "?"


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text.strip())
    if match is None:
        return Frame(text.strip(), "")
    return Frame(match["function"], match["file"])


@dataclass
class Profile:
    samples: int
    self_counts: Counter[Frame]
    total_counts: Counter[Frame]
    package_counts: Counter[str]

    def top(self, counts: Counter[Any], n: int) -> list[tuple[Any, float]]:
        return [(key, count / self.samples) for key, count in counts.most_common(n)]

    def as_dict(self, n: int = 15) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "self": [{"function": f.label, "share": s} for f, s in self.top(self.self_counts, n)],
            "total": [{"function": f.label, "share": s} for f, s in self.top(self.total_counts, n)],
            "self_by_package": [
                {"package": p, "share": s} for p, s in self.top(self.package_counts, n)
            ],
        }


def aggregate(raw: str, skip_prefixes: tuple[str, ...] = ("process ", "thread ")) -> Profile:
    self_counts: Counter[Frame] = Counter()
    total_counts: Counter[Frame] = Counter()
    package_counts: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            parse_frame(text)
            for text in stack.split(";")
            if text and not text.startswith(skip_prefixes)
        ]
        if not frames:
            continue
        samples += count
        self_counts[frames[-1]] += count
        package_counts[frames[-1].package] += count
        for frame in set(frames):
            total_counts[frame] += count
    return Profile(samples, self_counts, total_counts, package_counts)


def render(profile: Profile, n: int = 10) -> str:
    lines = [f"{profile.samples} on-CPU samples"]
    for title, counts in (("self", profile.self_counts), ("total", profile.total_counts)):
        lines.append(f"top {n} by {title} time:")
        for frame, share in profile.top(counts, n):
            lines.append(f"  {share:6.1%}  {frame.label}")
    lines.append("self time by package:")
    for package, share in profile.top(profile.package_counts, n):
        lines.append(f"  {share:6.1%}  {package}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/hotspots.py", description=__doc__)
    parser.add_argument("raw", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    profile = aggregate(args.raw.read_text())
    print(json.dumps(profile.as_dict(args.top)) if args.json else render(profile, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
