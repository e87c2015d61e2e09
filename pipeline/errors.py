"""Errors the pipeline jobs raise on purpose; the job runner maps them to exit codes.

::

    WatcherError
    └── InputError
        └── PipelineInputError   missing, corrupt or unusable input file (exit code 2)
    JobTerminated (BaseException)  SIGTERM arrived; temporary files are removed (exit code 143)
"""

from __future__ import annotations

from messages.errors import InputError


class PipelineInputError(InputError):
    """Raised when an input file is missing, corrupt or unusable; names the file and the rule."""


class JobTerminated(BaseException):
    """Raised in the job by the SIGTERM handler so that `finally` blocks remove temporary files."""
