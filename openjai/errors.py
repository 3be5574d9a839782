"""Exception hierarchy: every failure openjai reports is an ``OpenJAIError``.

Scripts can catch ``OpenJAIError`` alone; the CLI and the project's own scripts turn it into
a one-line message and a non-zero exit status (``exit_status``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class OpenJAIError(Exception):
    """Base class of all errors raised on purpose by openjai."""


class BitstreamError(OpenJAIError):
    """A .jai stream is malformed, truncated, corrupted or exceeds a limit."""


class ImageError(OpenJAIError):
    """An input image cannot be read or has an unsupported layout."""


class ModelError(OpenJAIError):
    """A model file is missing, malformed, or does not match the stream."""


class LimitError(BitstreamError):
    """A declared size exceeds a configured limit (decompression-bomb protection)."""


class RateControlError(OpenJAIError):
    """A rate target or quality parameter is invalid."""


class OutputError(OpenJAIError):
    """An output file cannot be written (exists without --force, no permission, ...)."""


class DataError(OpenJAIError):
    """Training or evaluation data is missing or unreadable."""


class ToolMissingError(OpenJAIError):
    """An external program or optional package is not installed; the message names it."""


class CodecError(OpenJAIError):
    """An anchor codec failed to encode or decode (its stderr is in the message)."""


class MetricError(OpenJAIError):
    """A quality metric cannot be computed for these inputs."""


class SessionError(OpenJAIError):
    """A subjective test session, its design or its recorded scores are missing or inconsistent."""


class TaskUnavailableError(ModelError):
    """A machine task has no weights for the codec model that wrote a stream (openjai/tasks/registry.py)."""


def exit_status(work: Callable[[], int | None]) -> int:
    """The exit status of a command: ``work()``'s (0 when it returns None), or 1 with the message
    of the OpenJAIError it raised on one line of stderr."""
    try:
        return work() or 0
    except OpenJAIError as e:
        print(f"openjai: error: {e}", file=sys.stderr)
        return 1
