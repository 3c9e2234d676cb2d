"""Files written whole or not at all.

A writer writes a hidden temporary file of its own beside the target
(``.<name>.<random>.partial``, in the same folder so that the rename stays on one file system) and
renames it onto the target only once it is complete (``os.replace``, atomic on POSIX and Windows).
So a reader never sees a half-written file; a killed process leaves at most a hidden leftover
that :data:`LEFTOVER_PATTERN` matches and the target's own globs (``*.png``, ``*.tfrecord``,
``<prefix>_*``) do not; and two processes writing the same path at once each write a whole file
of their own: the last rename wins. The temporary file is created by the writer (``open``, PIL,
imageio, TensorFlow), so it gets the permissions of any new file (the umask's).

This guards against a killed or failing process, not a power cut (nothing is fsync'ed).
No TensorFlow here: any module may import it.
"""

import contextlib
import fnmatch
import os
import uuid

# Every temporary file of this module: hidden, and named ``.<target>.<random>.partial[<ext>]``.
LEFTOVER_PATTERN = ".*.partial*"


def temporary_path(path, keep_extension: bool = False) -> str:
    """A new hidden path beside ``path`` (``.<name>.<12 hex digits>.partial``), unique to the
    call. ``keep_extension``: end it with ``path``'s extension, for writers that choose the file
    format from the name (imageio's ffmpeg)."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    extension = os.path.splitext(name)[1] if keep_extension else ""
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.partial{extension}")


@contextlib.contextmanager
def replacing(path, keep_extension: bool = False):
    """Yields :func:`temporary_path` for the block to write; renames it onto ``path`` when the
    block ends without an exception, and removes it otherwise (the exception propagates).

    The folder must exist. Raises OSError when the rename fails (the temporary file removed).
    """
    temporary = temporary_path(path, keep_extension)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):  # gone after the rename; may never have been made
            os.remove(temporary)


def write_bytes(path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through :func:`replacing`. Raises OSError."""
    with replacing(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)


def write_text(path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` through :func:`replacing`. Raises OSError."""
    with replacing(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def remove_leftovers(folder) -> list[str]:
    """Deletes the temporary files a killed writer left in ``folder`` (not in sub-folders).
    Only call when no other process writes there (hold the folder's lock). Returns their paths.
    """
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(os.fspath(folder)):
            if fnmatch.fnmatchcase(entry.name, LEFTOVER_PATTERN) and entry.is_file(
                follow_symlinks=False
            ):
                os.remove(entry.path)
                removed.append(entry.path)
    return removed
