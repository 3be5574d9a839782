"""Stopping a training loop cleanly: SIGTERM or SIGINT (Ctrl-C, ``kill``) only ask the loop to
stop; it finishes its step, saves its checkpoint and returns, so no step since the last
periodic save is lost."""

from __future__ import annotations

import signal
from types import FrameType, TracebackType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Within ``with StopRequest() as stop:``, SIGTERM and SIGINT set ``stop.requested``
    instead of ending the process; the previous handlers come back on leaving."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002 - handler signature
        self.requested = True

    def __enter__(self) -> StopRequest:
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
