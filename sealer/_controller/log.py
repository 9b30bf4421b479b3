"""The controller's log: one line per event on stderr, `key=value` pairs (logfmt).

One line per event, written whole, so a log collector never splits or merges events. Callers
pass names, counts and error messages only; `sealer.errors` messages carry no secret material.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import TextIO

_BARE = re.compile(r"[A-Za-z0-9_./:@+,\[\]-]+")


def _quote(value: object) -> str:
    text = " ".join(str(value).split())  # no line breaks: one event, one line
    if _BARE.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EventLog:
    """`log("sync", result="ok", commit=…)` writes `time=… level=info event=sync result=ok commit=…`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: str, *, level: str = "info", **fields: object) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        parts = [f"time={stamp}", f"level={level}", f"event={_quote(event)}"]
        parts += [f"{k}={_quote(v)}" for k, v in fields.items() if v is not None]
        line = " ".join(parts) + "\n"
        stream = self._stream or sys.stderr
        with self._lock:
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not stop the controller
