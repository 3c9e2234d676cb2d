"""BlazePose's two model files: where they are cached, fetching them once, checking them.

MediaPipe's BlazePose (Apache-2.0): ``pose_detection.tflite`` (person detector) and
``pose_landmark_full.tflite`` (33 landmarks). They ship inside the ``mediapipe==0.10.21`` wheel on
PyPI, the last release that bundles them; mediapipe itself cannot live beside TensorFlow 2.21
(protobuf<5, numpy<2), so :func:`fetch_model` downloads that wheel with pip, extracts the two files,
checks their SHA-256 and caches them in :func:`blazepose_dir` (``~/.cache/pg2_tf/blazepose``,
``$PG2_TF_CACHE/blazepose`` when set, or ``--cache_dir``).

Rule: nothing is downloaded at run time, only by :func:`fetch_model` (``python -m pg2_tf.keypoints
--fetch_model``); everything else checks the files and names that command when they are missing.
Imports only ``pg2_tf.core``.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

from pg2_tf.core import atomic
from pg2_tf.core.errors import DataError

MEDIAPIPE_WHEEL = "mediapipe==0.10.21"
FETCH_COMMAND = "python -m pg2_tf.keypoints --fetch_model"
# file name -> (path inside the wheel, SHA-256); identical in every platform's wheel.
MODEL_FILES = {
    "pose_detection.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}
# A wheel known to exist, for Pythons/platforms without a mediapipe 0.10.21 wheel of their own.
_FALLBACK_WHEEL_ARGS = ("--python-version", "3.11", "--platform", "manylinux_2_28_x86_64")


class ModelFilesMissing(DataError):
    """The BlazePose model files are not in the cache; the message is the command to run."""


def blazepose_dir(cache_dir=None) -> str:
    """The folder holding the BlazePose model files.

    Args:
      cache_dir: a folder (str or path-like, ``~`` expanded), or None for the default.

    Returns:
      The absolute folder: ``cache_dir``, else ``$PG2_TF_CACHE/blazepose``, else
      ``~/.cache/pg2_tf/blazepose``.
    """
    if cache_dir:
        return os.path.abspath(os.path.expanduser(os.fspath(cache_dir)))
    root = os.environ.get("PG2_TF_CACHE") or os.path.join("~", ".cache", "pg2_tf")
    return os.path.abspath(os.path.join(os.path.expanduser(root), "blazepose"))


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model_files(directory: str) -> None:
    """Checks that both model files are in ``directory`` with their SHA-256.

    Args:
      directory: the folder (as :func:`blazepose_dir` returns it).

    Raises:
      ModelFilesMissing: a file is missing or damaged; the one-line message names it and the
        command that fetches it (with ``--cache_dir`` when the folder is not the default).
    """
    for name, (_, sha) in MODEL_FILES.items():
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or _sha256(path) != sha:
            state = "is damaged" if os.path.isfile(path) else "is missing"
            hint = f" --cache_dir={directory}" if directory != blazepose_dir() else ""
            raise ModelFilesMissing(
                f"BlazePose model file {path} {state}; run: {FETCH_COMMAND}{hint}"
            )


def fetch_model(cache_dir=None) -> str:
    """Downloads the BlazePose model files into :func:`blazepose_dir` (once).

    Runs ``python -m pip download mediapipe==0.10.21 --no-deps --only-binary=:all:`` (this
    platform's wheel; if there is none, a manylinux one: the model files are the same in every
    wheel), extracts the two ``.tflite`` files and checks their SHA-256. Does nothing, offline, when
    the checked files are already there.

    Args:
      cache_dir: the folder, or None for the default (see :func:`blazepose_dir`).

    Returns:
      The absolute folder now holding both checked files.

    Raises:
      DataError: (one line) pip, the checksum or writing the folder failed.
    """
    directory = blazepose_dir(cache_dir)
    try:
        check_model_files(directory)
        return directory
    except ModelFilesMissing:
        pass
    with tempfile.TemporaryDirectory(prefix="pg2_tf_mediapipe_") as download:
        wheel = _download_wheel(download)
        with zipfile.ZipFile(wheel) as archive:
            files = {name: archive.read(member) for name, (member, _) in MODEL_FILES.items()}
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != MODEL_FILES[name][1]:
            raise DataError(
                f"{MODEL_FILES[name][0]} in the downloaded {MEDIAPIPE_WHEEL} wheel does not have "
                "the expected SHA-256; the download is damaged or not the official wheel"
            )
    try:
        os.makedirs(directory, exist_ok=True)
        for name, data in files.items():
            # Another fetch may be writing the same files right now (two commands, or the test
            # suite's workers, on a machine without them): each writes a partial file of its own.
            atomic.write_bytes(os.path.join(directory, name), data)
    except OSError as error:
        raise DataError(
            f"cannot write the model files into {directory} ({error.strerror or error}); "
            "choose another folder with --cache_dir or PG2_TF_CACHE"
        ) from None
    check_model_files(directory)
    return directory


def _download_wheel(folder: str) -> str:
    base = [sys.executable, "-m", "pip", "download", MEDIAPIPE_WHEEL, "--no-deps"]
    base += ["--only-binary=:all:", "--disable-pip-version-check", "-d", folder]
    error = ""
    for extra in ((), _FALLBACK_WHEEL_ARGS):
        result = subprocess.run(base + list(extra), capture_output=True, text=True, check=False)
        wheels = [name for name in os.listdir(folder) if name.endswith(".whl")]
        if result.returncode == 0 and wheels:
            return os.path.join(folder, wheels[0])
        lines = (result.stderr or result.stdout).strip().splitlines()
        error = lines[-1] if lines else f"exit status {result.returncode}"
    raise DataError(f"pip could not download {MEDIAPIPE_WHEEL} from the package index ({error})")
