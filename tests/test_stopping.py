"""Stopping training by signal (mt.stopping): the first signal asks, and the handlers are put back."""

import os
import signal

from mt.stopping import StopSignals


def test_a_signal_asks_training_to_stop_and_the_previous_handlers_come_back():
    heard = []
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals(heard.append) as stop:
        assert stop() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop() == "SIGTERM" and heard == ["SIGTERM"]
    assert signal.getsignal(signal.SIGTERM) is before
    assert StopSignals.EXIT_CODES["SIGTERM"] == 128 + signal.SIGTERM
