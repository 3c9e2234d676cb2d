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
    """A new hidden path beside ``path``, unique to the call.

    Args:
        path: str or path-like, the target file.
        keep_extension: end the name with ``path``'s extension, for writers that choose the file
            format from the name (imageio's ffmpeg).

    Returns:
        ``<folder>/.<name>.<12 hex digits>.partial[<extension>]``, absolute; nothing is created.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    extension = os.path.splitext(name)[1] if keep_extension else ""
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.partial{extension}")


@contextlib.contextmanager
def replacing(path, keep_extension: bool = False):
    """Lends a temporary path for a block to write, and renames it onto ``path`` when the block ends.

    On an exception the temporary file is removed and the exception propagates. The folder must
    exist.

    Args:
        path: str or path-like, the target file.
        keep_extension: as :func:`temporary_path`.

    Yields:
        The :func:`temporary_path` to write.

    Raises:
        OSError: the rename fails (the temporary file is removed).
    """
    temporary = temporary_path(path, keep_extension)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):  # gone after the rename; may never have been made
            os.remove(temporary)


def write_bytes(path, data: bytes) -> None:
    """Writes ``data`` to ``path`` whole or not at all (:func:`replacing`).

    Args:
        path: str or path-like, the target file; its folder must exist.
        data: the file's content.

    Raises:
        OSError: the file cannot be written.
    """
    with replacing(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)


def write_text(path, text: str) -> None:
    """:func:`write_bytes` of ``text`` encoded as UTF-8 (``path``: the target, its folder must exist).

    Args:
        path, text: the file and its content. Raises OSError when it cannot be written.
    """
    with replacing(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def remove_leftovers(folder) -> list[str]:
    """Deletes the temporary files a killed writer left in ``folder`` (not in sub-folders).

    Only call when no other process writes there (hold the folder's lock).

    Args:
        folder: str or path-like; a missing folder has no leftovers.

    Returns:
        The paths removed (those matching :data:`LEFTOVER_PATTERN`), in directory order.
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
