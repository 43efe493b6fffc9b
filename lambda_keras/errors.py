"""How the command line reports errors.

A user error (a bad flag, a missing or corrupt file, an optional extra that
is not installed, a full disk) is printed as one line and exits with code 2.
Anything else is an internal error: one line that says so and exit code 1,
with the traceback only under `--debug`.
"""

import sys

from lambda_keras.extras import MissingExtraError


class UsageError(ValueError):
    """A command-line argument that cannot be used; the message names it."""


# Errors of what the user gave: the argument, the file or the machine.
USER_ERRORS = (ValueError, OSError, MissingExtraError)


def one_line(error):
    """The error's message on one line (nested causes' newlines removed)."""
    return " ".join(str(error).split()) or type(error).__name__


def run_reporting_errors(prog, run, debug=False):
    """Calls `run()` and turns its exceptions into a message and exit code.

    Args:
        prog: the command, e.g. "lambda-keras train", prefixed to messages.
        run: a callable returning the exit code.
        debug: re-raise every exception (the full traceback).

    Returns:
        `run()`'s exit code, 2 for a user error, 1 for an internal error.
    """
    try:
        return run()
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if debug:
            raise
        print(
            f"{prog}: internal error: {type(error).__name__}: {one_line(error)} "
            "(this is a bug; rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
