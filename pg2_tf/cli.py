"""Shared plumbing of the command-line entry points (main, export, generate, score)."""

import sys
from collections.abc import Callable

from absl import app, flags

from pg2_tf.errors import Pg2Error


def run_main(main: Callable[[list[str]], int | None]) -> None:
    """Runs an absl ``main(argv)``; a :class:`Pg2Error` becomes one ``error:`` line and exit 2.

    Flag parsing errors are absl's own (usage message, exit 1). Anything else is a bug and keeps
    its traceback.
    """

    def guarded(argv: list[str]) -> int | None:
        try:
            return main(argv)
        except Pg2Error as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded)


def define_missing_flags(definitions, flag_values=flags.FLAGS) -> None:
    """Defines ``(DEFINE_x, name, default, help)`` flags not defined yet.

    Entry points whose flags share names with ``pg2_tf.flags`` (``--model``, ``--img_H``, ...) call
    this from their own ``run()``, so that importing them as libraries never clashes.
    """
    for define, name, default, help_text in definitions:
        if name not in flag_values:
            define(name, default, help_text, flag_values=flag_values)
