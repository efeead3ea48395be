"""The board every benchmark's sandbox serves: the status vocabulary's labels in their groups.

Passed as `SandboxConfig(status_options=BOARD)`, so a step added to statuses.py reaches
the benchmarks' calendars as it reaches the tests' and the demo's.
"""

from __future__ import annotations

from reelqueue.sandbox import status_options
from reelqueue.statuses import StatusTable

BOARD = status_options(StatusTable().groups())
