"""What the `train` command lines do with an error the user can fix: one line naming it, exit status 2.

Settings, data, model config and checkpoint errors say what to change (a flag, a folder, a file); a
traceback would bury that under the call stack. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

from mango.data.errors import DataError
from mango.models.config import ConfigError
from mango.models.errors import CheckpointError


def reports_user_errors(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Wrap a ``main(argv) -> int``: a user error becomes ``prog: error: message`` on stderr and status 2."""
    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(*args, **kwargs) -> int:
            # imported here: the trainer imports train.evaluate, which uses this module
            from .trainer import SettingsError

            try:
                return main(*args, **kwargs)
            except (SettingsError, DataError, ConfigError, CheckpointError) as e:
                print(f"{prog}: error: {e}", file=sys.stderr)
                return 2
        return wrapped
    return wrap


def printable(result: dict[str, Any]) -> str:
    """A result as JSON for the terminal: one key a line, a list of numbers (per-class scores) on its own line
    instead of one number a line."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in result.items()]
    return "{\n" + ",\n".join(lines) + "\n}"
