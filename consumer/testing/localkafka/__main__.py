"""`python -m consumer.testing.localkafka`: a throwaway broker for trying things by hand."""

from __future__ import annotations

import sys

from consumer.testing.localkafka.broker import main

sys.exit(main())
