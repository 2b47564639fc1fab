"""SIGINT and SIGTERM during training: noted, so the loop stops between two steps with a safe checkpoint."""

from __future__ import annotations

import signal
import threading


class StopSignals:
    """While active, SIGINT/SIGTERM set `received` instead of killing the process mid-step. A second signal
    gets the default behaviour (Ctrl-C twice stops at once). Only the main thread can install handlers."""

    NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, number, frame) -> None:
        self.received = number
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.NAMES:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    @property
    def name(self) -> str:
        return self.NAMES.get(self.received, f"signal {self.received}")
