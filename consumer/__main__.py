"""`python -m consumer` is the same as `personalize-consumer`."""

from __future__ import annotations

import sys

from consumer.cli import main

sys.exit(main())
