"""Shared by the scenario scripts: one machine-readable result line on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

MARKER = "SCENARIO_RESULT "


def emit(result: dict[str, Any]) -> None:
    """Prints the scenario's result as one JSON line that the test picks out of stdout."""
    sys.stdout.write(MARKER + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    """Reports a failure of the scenario itself and exits non-zero."""
    emit({"ok": False, "error": message})
    sys.exit(1)


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)
