"""`python -m consumer.testing.emulator`: run the emulator without the main CLI."""

from __future__ import annotations

import sys

from consumer.testing.emulator.cli import main

sys.exit(main())
