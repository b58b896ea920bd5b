"""Stopping a training run by signal: finish the current step, save ``last/``, then exit.

``mt.train.train`` asks its ``stop_requested`` callback after every update; ``StopSignals`` is
that callback for a process stopped by its user, its terminal or its scheduler.
"""

from __future__ import annotations

import os
import signal
from typing import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """While active, SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped SSH session) ask
    training to stop after the current step (a second one kills). Calling it returns the name of
    the signal received, or None; ``on_signal(name)`` hears of the first one as it arrives."""

    EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}  # 128 + the signal's number, as a shell reports it

    def __init__(self, on_signal: Callable[[str], None] = lambda name: None):
        self.on_signal = on_signal
        self.received: str | None = None
        self.previous = {}

    def _handle(self, number, frame):
        if self.received:
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        self.received = signal.Signals(number).name
        self.on_signal(self.received)

    def __enter__(self):
        for number in STOP_SIGNALS:
            self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def __call__(self) -> str | None:
        return self.received
