"""An exclusive lock on a folder for the life of one process (no TensorFlow, no other imports).

A ``flock`` on ``<folder>/.lock``, which holds the holder's pid. The kernel releases it when the
process ends in any way (kill -9 included), so a stale lock never blocks a rerun; a second process
gets one line naming the folder's flag, the holder's pid and what to do. Used for a training run's
model_dir (:class:`pg2_tf.training.run_folder.Lock`) and for the output folder of
``data_prep.from_release``.
"""

import fcntl
import os

from pg2_tf.core.errors import Pg2Error

LOCK_NAME = ".lock"


class FolderInUse(Pg2Error):
    """The folder is locked by another process, or the lock file cannot be made."""


class FolderLock:
    """Context manager holding ``folder/.lock``.

    Args:
        folder: the folder (made when missing).
        flag: the command-line flag that names it, for the messages (``--model_dir``).
        user: what holds it, for the messages (``training process``).
        error: the :class:`Pg2Error` subclass raised.
    """

    def __init__(self, folder: str, flag: str, user: str, error: type = FolderInUse):
        self.folder, self.flag, self.user, self.error = folder, flag, user, error
        self._handle = None

    def __enter__(self):
        try:
            os.makedirs(self.folder, exist_ok=True)
            handle = open(os.path.join(self.folder, LOCK_NAME), "a+")
        except OSError as error:
            raise self.error(
                f"cannot write in {self.flag}={self.folder} ({error.strerror or error}): "
                f"make it writable or pick another {self.flag}"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise self.error(
                f"{self.flag}={self.folder} is in use by another {self.user} (pid {holder}, "
                f"holding {LOCK_NAME}): wait for it to end, stop it, or use another {self.flag}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None
        return False
