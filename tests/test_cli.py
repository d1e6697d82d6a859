"""The command line as a newcomer meets it: `--help` says how the service is configured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def help_of(command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "consumer", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_run_help_lists_every_variable_the_readme_documents_and_points_there() -> None:
    text = help_of("run")
    assert "README.md, section Configuration" in text
    section = README.read_text().split("### Configuration", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (.+?) \|", section, flags=re.MULTILINE)
    documented = {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row)}
    listed = set(re.findall(r"^  ([A-Z_]+)[= ]", text, flags=re.MULTILINE)) | set(
        re.findall(r"^  ([A-Z_]+)$", text, flags=re.MULTILINE)
    )
    assert "KAFKA_BOOTSTRAP_SERVERS" in listed and "MAX_IN_FLIGHT_CALLS" in listed
    assert listed == documented - {"SETTINGS_FILE"}  # SETTINGS_FILE is named in the lead line


def test_replay_and_check_say_the_same() -> None:
    assert "KAFKA_BOOTSTRAP_SERVERS" in help_of("replay")
    assert "DEAD_LETTER_TOPIC" in help_of("check")
