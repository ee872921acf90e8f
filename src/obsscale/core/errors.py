"""One base for every error caused by what a user gave us.

Every error a user can fix (a score table, a config block, a model sheet, a task file, an unknown
name) derives from `InputError`.  The rule boundary (`obsscale.core.io.setup_logging`) and the CLI
print such an error as one line and exit non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class InputError(ValueError):
    """Bad user input (a table, a config block, a model sheet): reported as one message, no traceback."""


class ConfigError(InputError):
    """A config block that cannot be run; the message names the key path."""


class UnknownNameError(InputError, KeyError):
    """A name that is not in a registry (with the closest known names)."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written
        return str(self.args[0])


def did_you_mean(name: object, options: Iterable[object], n: int = 1) -> str:
    """`"; did you mean 'x'?"` for the closest option(s) to `name`, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=n)
    if not close:
        return ""
    return "; did you mean " + ", ".join(f"'{c}'" for c in close) + "?"
