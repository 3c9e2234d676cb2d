"""What every command line shares: one-line errors, --help, flags defined once.

Rule: only the command modules at the top of pg2_tf (and data_prep's, benchmarks') import this;
no library package does.
"""

import sys
from collections.abc import Callable

from absl import app, flags, logging

from pg2_tf.core.errors import ConfigError, Pg2Error


def run_main(main: Callable[[list[str]], int | None]) -> None:
    """Runs an absl ``main(argv)``; a :class:`Pg2Error` becomes one ``error:`` line and exit 2.

    Flag parsing errors are absl's own (usage message, exit 1). Anything else is a bug and keeps
    its traceback.

    Args:
        main: the command's ``main(argv)``; its return value is the exit status.
    """

    def guarded(argv: list[str]) -> int | None:
        try:
            return main(argv)
        except Pg2Error as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    prepare_help(sys.modules[main.__module__].__doc__)
    app.run(guarded)


def prepare_help(doc: str | None, flag_values=flags.FLAGS) -> None:
    """Makes ``--help`` say what the command does and list its flags. absl prints the main
    module's docstring and key flags (those of ``sys.argv[0]``): a console script has no
    docstring and defines no flags itself, and flags defined through
    :func:`define_missing_flags` belong to this module. So the command's module docstring
    (``doc``) stands in, and every flag of this project's modules becomes a key flag of the main
    module (absl's and TensorFlow's stay in ``--helpfull``).

    Args:
        doc: the command module's docstring.
        flag_values: the absl flag registry.
    """
    script = sys.modules["__main__"]
    if not script.__doc__:
        script.__doc__ = doc
    for module, module_flags in flag_values.flags_by_module_dict().items():
        if module.startswith(("pg2_tf", "data_prep")) or module == sys.argv[0]:
            for flag in module_flags:
                flag_values.register_key_flag_for_module(sys.argv[0], flag)


def define_missing_flags(definitions, flag_values=flags.FLAGS) -> None:
    """Defines ``(DEFINE_x, name, default, help)`` flags not defined yet.

    Entry points whose flags share names with ``pg2_tf.flags`` (``--model``, ``--img_H``, ...) call
    this from their own ``run()``, so that importing them as libraries never clashes.

    Args:
        definitions: ``(DEFINE_x, name, default, help)`` tuples.
        flag_values: the absl flag registry.
    """
    for define, name, default, help_text in definitions:
        if name not in flag_values:
            define(name, default, help_text, flag_values=flag_values)


def start_command(argv: list[str], flag_values=flags.FLAGS) -> None:
    """The first lines of a command's ``main(argv)``: positional arguments are refused in one line
    (every option is a ``--flag``), and absl's INFO lines are hidden unless ``--verbosity`` was
    given (TensorFlow's INFO lines about tracing and saving are noise to a user).

    Args:
        argv: the command's arguments left after absl parsed the flags.
        flag_values: the absl flag registry.
    """
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}: every option is a --flag")
    if not flag_values["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


def require_flags(names, flag_values=flags.FLAGS) -> None:
    """Refuses, in one line naming the flag, a command run without one of its required flags
    (absl's own required flags would fail at import, before main).

    Args:
        names: the flags that must be given.
        flag_values: the absl flag registry.
    """
    for name in names:
        if not flag_values[name].value:
            raise ConfigError(f"--{name} is required")


def console_entry(define_flags: Callable[[], None], main: Callable[[list[str]], None]) -> None:
    """A console script's body: the command's flags defined, then :func:`run_main`.

    Args:
        define_flags: defines the command's absl flags.
        main: the command's ``main(argv)``.
    """
    define_flags()
    run_main(main)
