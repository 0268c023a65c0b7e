"""User-facing errors: anything a user can cause (bad trace, bad flag, bad plug-in) raises one of these.

`run.py` turns them into one line on stderr and exit code 2; nothing else is caught there, so a real bug
still shows its traceback.
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
