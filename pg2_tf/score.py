"""Scores a test-mode output folder: SSIM, IS, PSNR, L1, L2 (the paper's score.py) and FID.

Usage::

    python -m pg2_tf.score --result_dir=model_dir/test_result [--mask] \\
        [--inception_graph=/path/to/inception-2015-12-05.tgz]

Reads ``G/*.png`` and ``x_target/*.png`` (paired by file name) and, with ``--mask``, the mask
images (``mask*255`` as ``uint8``) of ``--mask_folder``; writes ``score_rgb.txt`` (or
``score_mask.txt``) into ``result_dir`` in the original's format and prints a table. IS and FID
need the 2015-12-05 Inception graph (``--inception_graph`` or ``$PG2_INCEPTION_GRAPH``); without
it they are skipped with a message saying where to get it.
"""

import os
import sys

import numpy as np
from absl import flags
from PIL import Image

from pg2_tf import cli, metrics
from pg2_tf.errors import ConfigError, DataError

INCEPTION_GRAPH_ENV = "PG2_INCEPTION_GRAPH"
IMAGE_SUFFIXES = (".png", ".jpg")
# score_mask.py read the masks of the test_result/mask folder (the mask saved beside x), not
# mask_target: kept as the default so the published mask-SSIM / mask-IS can be reproduced.
DEFAULT_MASK_FOLDER = "mask"

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this command's flags; only its own entry point does, so that importing the
    library functions never clashes with the flags of ``pg2_tf.main``."""
    flags.DEFINE_string("result_dir", None, "Test-mode output folder holding G/ and x_target/.")
    flags.DEFINE_bool(
        "mask", False, "Score masked images (both multiplied by mask/255), write score_mask.txt."
    )
    flags.DEFINE_string(
        "mask_folder",
        DEFAULT_MASK_FOLDER,
        "Sub-folder of result_dir with the mask images used by --mask ('mask' as the original "
        "score_mask.py; 'mask_target' for the target's own mask).",
    )
    flags.DEFINE_string(
        "inception_graph",
        None,
        f"inception-2015-12-05.tgz or its classify_image_graph_def.pb (default: ${INCEPTION_GRAPH_ENV}).",
    )


def missing_inception_message() -> str:
    """One line saying IS/FID were skipped and how to get the graph."""
    return (
        f"Inception graph not given: IS and FID skipped. Download {metrics.INCEPTION_URL} and "
        f"pass --inception_graph=/path/to/inception-2015-12-05.tgz (or its "
        f"{metrics.INCEPTION_PB_NAME}), or set ${INCEPTION_GRAPH_ENV}."
    )


def resolve_inception_graph(inception_graph: str | None) -> str | None:
    """The graph path from the argument, else ``$PG2_INCEPTION_GRAPH``, else ``None``.

    Raises:
        DataError: a path was given but is not a file.
    """
    if inception_graph:
        path, origin = inception_graph, "--inception_graph"
    elif os.environ.get(INCEPTION_GRAPH_ENV):
        path, origin = os.environ[INCEPTION_GRAPH_ENV], f"${INCEPTION_GRAPH_ENV}"
    else:
        return None
    if not os.path.isfile(path):
        raise DataError(
            f"{origin}={path!r} is not a file; download {metrics.INCEPTION_URL} and point "
            f"{origin} at the .tgz or at the {metrics.INCEPTION_PB_NAME} inside it"
        )
    return path


def _image_names(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise DataError(f"folder {folder!r} not found; run the test mode to write it first")
    return sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_SUFFIXES))


def _read_image(path: str, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.mode != mode:
                image = image.convert(mode)
            return np.asarray(image, dtype=np.uint8)
    except OSError as error:
        raise DataError(f"cannot read image {path!r}: {error}") from error


def load_result_images(
    result_dir: str, *, mask_folder: str | None = None
) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list[np.ndarray] | None]:
    """Reads the paired images of a test-mode folder.

    Args:
        result_dir: folder with ``G/`` and ``x_target/`` (and ``mask_folder/`` when given).
        mask_folder: sub-folder of the masks, or ``None`` to read no masks.

    Returns:
        ``(names, G, x_target, masks)``: sorted file names; RGB ``uint8`` ``[H, W, 3]`` lists;
        masks as ``uint8`` ``[H, W]`` (0..255) or ``None``.

    Raises:
        DataError: result_dir or a sub-folder is missing, holds no images, or the folders do not
            hold the same file names.
    """
    if not os.path.isdir(result_dir):
        raise DataError(
            f"--result_dir={result_dir!r} is not a folder; give the test_result folder written "
            "by the test mode (it holds G/ and x_target/)"
        )
    folders = ["G", "x_target"] + ([mask_folder] if mask_folder else [])
    names = {folder: _image_names(os.path.join(result_dir, folder)) for folder in folders}
    generated_names = names["G"]
    if not generated_names:
        raise DataError(f"no .png/.jpg images in {os.path.join(result_dir, 'G')!r}")
    for folder in folders[1:]:
        if len(names[folder]) != len(generated_names):
            raise DataError(
                f"{len(generated_names)} images in G/ but {len(names[folder])} in {folder}/ of "
                f"{result_dir!r}; both must come from the same test run"
            )
        if names[folder] != generated_names:
            missing = sorted(set(generated_names) - set(names[folder]))[:3]
            raise DataError(
                f"file names of G/ and {folder}/ in {result_dir!r} differ (e.g. {missing} not "
                f"in {folder}/); both must come from the same test run"
            )

    def read_all(folder: str, mode: str) -> list[np.ndarray]:
        return [_read_image(os.path.join(result_dir, folder, n), mode) for n in generated_names]

    generated = read_all("G", "RGB")
    targets = read_all("x_target", "RGB")
    masks = read_all(mask_folder, "L") if mask_folder else None
    for index, name in enumerate(generated_names):
        sizes = {"G": generated[index].shape[:2], "x_target": targets[index].shape[:2]}
        if masks is not None:
            sizes[mask_folder] = masks[index].shape[:2]
        if len(set(sizes.values())) > 1:
            described = ", ".join(f"{folder}/ {h}x{w}" for folder, (h, w) in sizes.items())
            raise DataError(
                f"{os.path.join(result_dir, '{' + ','.join(sizes) + '}', name)} differ in size "
                f"({described}); all must come from the same test run"
            )
    return generated_names, generated, targets, masks


def score_result_dir(
    result_dir: str,
    *,
    mask: bool = False,
    inception_graph: str | None = None,
    mask_folder: str = DEFAULT_MASK_FOLDER,
) -> dict:
    """Computes the paper's scores (and FID) of a test-mode output folder.

    Args:
        result_dir: folder with ``G/``, ``x_target/`` (and ``mask_folder/`` with ``mask``).
        mask: score the masked images (``score_mask.py``): both images multiplied by ``mask/255``
            and truncated to ``uint8``; IS on masked G, FID masked G vs masked x_target.
        inception_graph: path of ``inception-2015-12-05.tgz`` or ``classify_image_graph_def.pb``;
            ``None`` reads ``$PG2_INCEPTION_GRAPH``; without either, IS and FID are ``None``.
        mask_folder: sub-folder of the mask images used when ``mask`` is set.

    Returns:
        ``{"num_images": int, "ssim_mean", "ssim_std", "psnr_mean", "psnr_std", "l1_mean",
        "l1_std", "l2_mean", "l2_std": float, "is_mean", "is_std", "fid": float or None,
        "inception_graph": path or None, "notes": list of str}`` (notes say why IS/FID are
        missing). L1/L2 are on the 0..255 scale; PSNR in dB (``inf`` for identical images).

    Raises:
        DataError: missing folders or graph file, unequal image counts, no images.
    """
    graph_path = resolve_inception_graph(inception_graph)
    _, generated, targets, masks = load_result_images(
        result_dir, mask_folder=mask_folder if mask else None
    )
    if masks is not None:
        generated = [metrics.apply_mask(g, m) for g, m in zip(generated, masks, strict=True)]
        targets = [metrics.apply_mask(t, m) for t, m in zip(targets, masks, strict=True)]

    scores: dict = {"num_images": len(generated)}
    scores.update(metrics.pair_scores(generated, targets))
    scores.update({"is_mean": None, "is_std": None, "fid": None, "inception_graph": graph_path})
    notes: list[str] = []
    if graph_path is None:
        notes.append(missing_inception_message())
    else:
        with metrics.InceptionGraph.from_file(graph_path) as graph:
            predictions, generated_features = graph.run(generated)
            if len(generated) >= metrics.IS_SPLITS:
                scores["is_mean"], scores["is_std"] = metrics.inception_score_from_predictions(
                    predictions, metrics.IS_SPLITS
                )
            else:
                notes.append(
                    f"IS skipped: it needs at least {metrics.IS_SPLITS} images "
                    f"({metrics.IS_SPLITS} splits), got {len(generated)}"
                )
            if len(generated) >= 2:
                _, target_features = graph.run(targets, probabilities=False)
                scores["fid"] = metrics.fid_from_features(generated_features, target_features)
            else:
                notes.append("FID skipped: it needs at least 2 images")
    scores["notes"] = notes
    return scores


def _pm(scores: dict, name: str) -> str:
    mean, std = scores[f"{name}_mean"], scores[f"{name}_std"]
    return "n/a" if mean is None else f"{mean:.5f} +- {std:.5f}"


def score_file_text(scores: dict) -> str:
    """The original's score file text (``Image number`` line, then one line of ``name: mean +-
    std`` fields), plus a ``FID:`` line; IS/FID are ``n/a`` when not computed."""
    fields = [
        f"ssim: {_pm(scores, 'ssim')}",
        f"IS: {_pm(scores, 'is')}",
        f"psnr: {_pm(scores, 'psnr')}",
        f"L1: {_pm(scores, 'l1')}",
        f"L2: {_pm(scores, 'l2')}",
    ]
    fid = "n/a" if scores["fid"] is None else f"{scores['fid']:.5f}"
    return f"Image number: {scores['num_images']}\n" + "   ".join(fields) + f"\nFID: {fid}\n"


def write_score_file(result_dir: str, scores: dict, *, mask: bool = False) -> str:
    """Writes ``score_rgb.txt`` (``score_mask.txt`` with ``mask``) into result_dir; returns its
    path."""
    path = os.path.join(result_dir, "score_mask.txt" if mask else "score_rgb.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(score_file_text(scores))
    return path


def format_table(scores: dict) -> str:
    """A plain-text table of the scores (metric, mean, std)."""

    def cell(value) -> str:
        return "n/a" if value is None else f"{value:.5f}"

    rows = [("metric", "mean", "std")]
    for label, key in (
        ("SSIM", "ssim"),
        ("IS", "is"),
        ("PSNR", "psnr"),
        ("L1", "l1"),
        ("L2", "l2"),
    ):
        rows.append((label, cell(scores[f"{key}_mean"]), cell(scores[f"{key}_std"])))
    rows.append(("FID", cell(scores["fid"]), ""))
    return "\n".join(f"{a:<8}{b:>12}{c:>12}".rstrip() for a, b, c in rows)


def main(argv: list[str]) -> None:
    """Entry point: scores ``--result_dir``, writes the score file and prints the table."""
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; pass everything as --flags")
    if not FLAGS.result_dir:
        raise ConfigError("--result_dir is required, e.g. --result_dir=model_dir/test_result")
    if FLAGS.mask and not FLAGS.mask_folder:
        raise ConfigError("--mask needs --mask_folder (the sub-folder of the mask images)")
    scores = score_result_dir(
        FLAGS.result_dir,
        mask=FLAGS.mask,
        inception_graph=FLAGS.inception_graph,
        mask_folder=FLAGS.mask_folder,
    )
    for note in scores["notes"]:
        print(f"warning: {note}", file=sys.stderr)
    path = write_score_file(FLAGS.result_dir, scores, mask=FLAGS.mask)
    kind = f"masked by {FLAGS.mask_folder}/" if FLAGS.mask else "rgb"
    print(f"{FLAGS.result_dir}: {scores['num_images']} images ({kind})")
    print(format_table(scores))
    print(f"written: {path}")


def run() -> None:
    """Console-script entry point (``pg2-score``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run_main(main)


if __name__ == "__main__":
    run()
