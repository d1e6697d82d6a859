"""`python -m consumer.emulator`: run the emulator without the main CLI."""

from __future__ import annotations

import sys

from consumer.emulator.cli import main

sys.exit(main())
