"""``pg2-app``: a local web page to pose a person interactively.

    python -m pg2_tf.app --saved_model=exported/market [--port=8080] [--host=127.0.0.1]
    python -m pg2_tf.app --saved_model=exported/market --data_dir=data/Market_test_data

The page shows source | target pose | G1 | G2 (| difference map). The source is an uploaded photo,
cropped to the person BlazePose finds and scaled to the export's size (or a test record's source
image when ``--data_dir`` is given); the target pose starts as the source's own, comes from a
second photo or a test record, and is edited by dragging the 18 joints of the skeleton drawn over
the image. Every change asks the server for a new result; G2 downloads as PNG and the pose as
OpenPose JSON. The page's library: :mod:`pg2_tf.apps.page_routes`.

Rule: flags in, checked into an :class:`pg2_tf.apps.page_service.AppConfig`, one call of
:func:`pg2_tf.apps.page_routes.create_app`, served by uvicorn on the flags' socket until Ctrl-C.
"""

import math
import socket
import sys

import uvicorn
from absl import flags

from pg2_tf import cli
from pg2_tf.apps import page_routes, page_service
from pg2_tf.core.errors import ConfigError
from pg2_tf.serving import engines


def define_flags(flag_values=flags.FLAGS) -> None:
    """Defines pg2-app's flags, skipping any already defined by another module.

    Args:
        flag_values: the ``absl.flags.FlagValues`` receiving them (default: the global FLAGS).
    """
    definitions = (
        (flags.DEFINE_string, "saved_model", None, "SavedModel folder written by pg2-export."),
        (flags.DEFINE_integer, "port", 8080, "TCP port to serve the page on."),
        (flags.DEFINE_string, "host", "127.0.0.1",
         "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)."),
        (flags.DEFINE_string, "data_dir", None,
         "Optional: folder of test records (or its parent) whose pairs the page offers."),
        (flags.DEFINE_float, "max_upload_mb", page_service.DEFAULT_MAX_UPLOAD_MB,
         "Largest photo accepted, in MB (2**20 bytes)."),
        (flags.DEFINE_string, "precision", "auto", engines.PRECISION_HELP),
        (flags.DEFINE_string, "proportions", None,
         "The page's proportions at start: source (the person keeps their bone lengths) or "
         "target (the pose as given); default: source when the pose comes from another "
         "person's photo, target for the source's own pose and the test records."),
        (flags.DEFINE_string, "keypoint_model_dir", None,
         "BlazePose model files (default: pg2_tf.keypoints' cache; python -m pg2_tf.keypoints "
         "--fetch_model gets them)."),
    )  # fmt: skip
    cli.define_missing_flags(definitions, flag_values)


def config_from_flags(flag_values=flags.FLAGS) -> page_service.AppConfig:
    """The page's settings from parsed flags.

    Args:
        flag_values: parsed ``absl.flags.FlagValues`` holding :func:`define_flags`' flags.

    Returns:
        The :class:`pg2_tf.apps.page_service.AppConfig` of the flags.

    Raises:
        ConfigError: one line naming the flag with a missing or bad value.
    """
    if not flag_values.saved_model:
        raise ConfigError("--saved_model is required (a folder written by pg2-export)")
    if not 0 <= flag_values.port < 65536:
        raise ConfigError(f"--port={flag_values.port} must be between 0 and 65535")
    if not (math.isfinite(flag_values.max_upload_mb) and flag_values.max_upload_mb > 0):
        raise ConfigError(f"--max_upload_mb={flag_values.max_upload_mb} must be a positive number")
    engines.check_precision(flag_values.precision)
    if flag_values.proportions not in (None, "source", "target"):
        raise ConfigError(f"--proportions={flag_values.proportions} must be source or target")
    return page_service.AppConfig(
        saved_model=flag_values.saved_model,
        data_dir=flag_values.data_dir,
        max_upload_bytes=int(flag_values.max_upload_mb * 2**20),
        keypoint_model_dir=flag_values.keypoint_model_dir,
        precision=flag_values.precision,
        proportions=flag_values.proportions,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening, for uvicorn to serve on.

    Args:
        host: ``--host``: an address of this machine (IPv6 when it holds a colon).
        port: ``--port``, 0-65535 (0: any free port).

    Returns:
        The listening socket (connections wait from now on, until the server accepts them).

    Raises:
        ConfigError: one line naming ``--host`` and ``--port`` when it cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait from now on, until the server accepts them
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"cannot listen on --host={host} --port={port} ({error.strerror or error}): choose "
            "another --port, or a --host address of this machine"
        ) from None
    return sock


def main(argv) -> None:
    """Serves the page from the command-line flags until Ctrl-C.

    Args:
        argv: as for :func:`pg2_tf.cli.start_command`.
    """
    cli.start_command(argv)
    flag_values = flags.FLAGS
    config = config_from_flags(flag_values)
    app = page_routes.create_app(config)
    sock = listening_socket(flag_values.host, flag_values.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    print(f"pg2-app: serving http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    # On stderr, with uvicorn's own log lines: stdout says only where the page is.
    service = app.state.service
    described = engines.describe(service.engine)
    if service.queue.side_by_side:
        described += "; under load two requests side by side, each on half of the cores"
    print(f"pg2-app: {described}", file=sys.stderr, flush=True)
    try:
        with sock:
            server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes Ctrl-C on
        pass
    # Also when uvicorn returns without passing it on: a SIGINT this process inherited as
    # ignored (a shell script's "&" job) raises no KeyboardInterrupt.
    print("pg2-app: stopped", flush=True)


def run() -> None:
    """Console entry point ``pg2-app``."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
