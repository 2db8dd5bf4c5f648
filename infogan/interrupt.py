"""Ctrl-C in the training loop: stop between two steps, never inside one.

A step updates D, then G, then their optimisers' moments in several calls; a ``KeyboardInterrupt``
raised between two of them leaves networks that belong to no step, which no checkpoint may hold.
``StepBoundary`` turns the first Ctrl-C into a request that the loop honours once the step in
progress (with its checkpoint and evaluation, if due) is complete, by raising ``Interrupted``:
the state in memory is then exactly that of the last completed step. A second Ctrl-C raises
``KeyboardInterrupt`` at once, wherever the loop is (the state may be half a step: nothing new is
saved). The handler is installed only where Python's own is (the main thread, no other handler
set by an embedding program); elsewhere Ctrl-C behaves as it always does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """Ctrl-C honoured between two steps: everything in memory is the last completed step's."""


class StepBoundary:
    """Defers the first SIGINT to the next step boundary (see the module docstring)."""

    def __init__(self) -> None:
        self.requested = False
        self._installed = False

    def install(self) -> StepBoundary:
        """Take over SIGINT if Python's default handler has it in this (main) thread; returns self."""
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def restore(self) -> None:
        """Give SIGINT back to Python's default handler (if ``install`` took it)."""
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False

    def steps(self, steps: Iterable[int]) -> Iterator[int]:
        """``steps``, raising ``Interrupted`` before the next one (or after the last) once Ctrl-C was pressed."""
        for step in steps:
            if self.requested:
                raise Interrupted
            yield step
        if self.requested:
            raise Interrupted

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, mid-step
        self.requested = True
