"""SIGINT as Python sets it up in a foreground process, for the tests of Ctrl-C.

A job started in the background (``nohup … &``, and some CI runners) starts with SIGINT ignored,
and Python then installs no handler for it. ``infogan.interrupt`` takes Ctrl-C over only from
Python's own handler (a background job keeps ignoring it, as its shell asked), so the tests that
press Ctrl-C install that handler first, and give the processes they start the default disposition
(with which Python installs its handler at start-up).
"""

from __future__ import annotations

import signal


def python_sigint() -> None:
    """Give this process Python's own SIGINT handler (``KeyboardInterrupt``)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def default_sigint() -> None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child starts with SIGINT's default
    disposition, whatever its parent ignores, so its Python installs its own handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
