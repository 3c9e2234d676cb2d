"""Exceptions that carry a user-facing message.

Every error a user can cause by bad input (a wrong flag, a missing file, a checkpoint of another
configuration) is raised as a subclass of :class:`Pg2Error` with a message that names the file or
flag and says how to fix it. Command-line entry points print that message on one line and exit with
status 2 instead of showing a traceback.

Rule: a message names the file or flag and says what to do, on one line.
"""


class Pg2Error(Exception):
    """Base class of the errors whose message is meant for the user."""


class ConfigError(Pg2Error):
    """A flag or configuration value is invalid."""


class DataError(Pg2Error):
    """Input data (records, pickles, images, keypoints) is missing or malformed."""


class CheckpointError(Pg2Error):
    """A checkpoint is missing or does not match the model that should receive it."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for a one-line report.

    Args:
        error: any exception (TensorFlow's messages run to pages).

    Returns:
        The message's first line, at most 300 characters; the exception's class name when the
        message is empty.
    """
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]
