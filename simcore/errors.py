"""User-facing errors: anything a user can cause (bad trace, bad flag, bad plug-in) raises one of these.

`run.py` turns them into one line on stderr and exit code 2; any other exception is a bug: `run.py` writes its
traceback to a crash log and prints one line naming that file (exit code 1).
"""


class SimError(Exception):
    """Base of every error caused by the user's input; its message names what and where."""


class ConfigError(SimError):
    """A parameter, flag or config file is invalid."""


class TraceError(SimError):
    """A trace file is missing or malformed (message: file, line, reason)."""


class PlanError(SimError):
    """A scheduler returned an invalid plan (message names the scheduler)."""


class SchedulerNotFound(SimError):
    """No scheduler is registered under the requested name."""


class SchedulerError(SimError):
    """A scheduler's own code raised (message: scheduler, method, error)."""


class OutputError(SimError):
    """The results folder cannot be written, or writing it would replace something the run did not write."""
