"""Specification of ``python -m pg2_tf.score`` and ``folder_scores.score_result_dir`` on a tiny test_result.

The folder holds 30 pairs of 16x16 images. x_target is random in 100..130; G is x_target with +40
on channel ``i % 3`` of image i, so by hand: L1 = 40/3, L2 = sqrt(256 * 40^2) / 768 = 5/6,
PSNR = 10 log10(255^2 / (40^2 / 3)) for every image, and the stand-in Inception graph (see
test_metrics) puts image i in class ``i % 3``: every split of 3 holds one image per class, IS = 3.
``mask/`` keeps the left half of every image, ``mask_target/`` everything.
"""

import json
import os

import numpy as np
import pytest
from helpers import run_score_cli, write_stand_in_graph
from PIL import Image

from pg2_tf.core.errors import DataError
from pg2_tf.scoring import folder_scores, metrics, result_folders

NUM, SIZE, SHIFT = 30, 16, 40


def _save(folder, index, array):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / f"{index:05d}.png")


@pytest.fixture
def result_dir(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "test_result"
    left_half = np.zeros((SIZE, SIZE), np.uint8)
    left_half[:, : SIZE // 2] = 255
    for i in range(NUM):
        target = rng.integers(100, 131, (SIZE, SIZE, 3)).astype(np.uint8)
        generated = target.copy()
        generated[..., i % 3] += SHIFT
        _save(root / "x_target", i, target)
        _save(root / "G", i, generated)
        _save(root / "mask", i, left_half)
        _save(root / "mask_target", i, np.full((SIZE, SIZE), 255, np.uint8))
    return root


@pytest.fixture
def graph_path(tmp_path):
    return write_stand_in_graph(tmp_path)


@pytest.fixture(autouse=True)
def no_graph_in_env(monkeypatch):
    monkeypatch.delenv(folder_scores.INCEPTION_GRAPH_ENV, raising=False)


def _parse_score_file(path):
    """{'ssim': (mean, std), ..., 'FID': value or 'n/a'} from the original's format."""
    lines = path.read_text().splitlines()
    values = {"Image number": int(lines[0].split(":")[1])}
    for field in lines[1].split("   "):
        name, rest = field.split(": ")
        values[name] = rest if rest == "n/a" else tuple(float(v) for v in rest.split(" +- "))
    fid = lines[2].split(": ")[1]
    values["FID"] = fid if fid == "n/a" else float(fid)
    return values


def test_cli_writes_score_rgb_with_the_hand_computed_numbers(result_dir, graph_path):
    completed = run_score_cli(f"--result_dir={result_dir}", f"--inception_graph={graph_path}")
    assert completed.returncode == 0, completed.stderr
    values = _parse_score_file(result_dir / "score_rgb.txt")
    assert values["Image number"] == NUM
    assert values["L1"] == pytest.approx((SHIFT / 3, 0.0), abs=1e-5)
    assert values["L2"] == pytest.approx((5 / 6, 0.0), abs=1e-5)
    assert values["psnr"] == pytest.approx((10 * np.log10(255**2 * 3 / SHIFT**2), 0.0), abs=1e-5)
    assert values["IS"] == pytest.approx((3.0, 0.0), abs=1e-5)
    library = folder_scores.score_result_dir(str(result_dir), inception_graph=graph_path)
    assert values["ssim"] == pytest.approx((library["ssim_mean"], library["ssim_std"]), abs=1e-5)
    assert values["FID"] == pytest.approx(library["fid"], abs=1e-5)
    assert library["fid"] > 0
    assert "SSIM" in completed.stdout and "written:" in completed.stdout


def test_cli_mask_uses_the_mask_folder_and_skips_is_without_the_graph(result_dir):
    completed = run_score_cli(f"--result_dir={result_dir}", "--mask")
    assert completed.returncode == 0, completed.stderr
    assert not (result_dir / "score_rgb.txt").exists()
    values = _parse_score_file(result_dir / "score_mask.txt")
    # only the left half differs after masking with mask/: L1 halves
    assert values["L1"] == pytest.approx((SHIFT / 6, 0.0), abs=1e-5)
    assert values["IS"] == "n/a" and values["FID"] == "n/a"
    assert metrics.INCEPTION_URL in completed.stderr
    assert "--inception_graph" in completed.stderr


def test_cli_json_of_pg2_holds_both_variants_and_writes_both_score_files(result_dir, tmp_path):
    path = tmp_path / "pg2.json"
    completed = run_score_cli(f"--result_dir={result_dir}", f"--json={path}")
    assert completed.returncode == 0, completed.stderr
    numbers = json.loads(path.read_text())
    rgb = folder_scores.score_result_dir(str(result_dir))
    masked = folder_scores.score_result_dir(str(result_dir), mask=True)
    assert numbers["protocol"] == "pg2" and numbers["num_images"] == NUM
    assert numbers["SSIM"] == pytest.approx(rgb["ssim_mean"], abs=1e-12)
    assert numbers["L1"] == pytest.approx(SHIFT / 3, abs=1e-9)  # the 0..255 scale
    assert numbers["mask_SSIM"] == pytest.approx(masked["ssim_mean"], abs=1e-12)
    assert numbers["IS"] is None and numbers["FID"] is None and numbers["mask_IS"] is None
    assert (result_dir / "score_rgb.txt").exists() and (result_dir / "score_mask.txt").exists()


def test_mask_scores_apply_the_mask_to_both_images_as_score_mask_py(result_dir):
    scores = folder_scores.score_result_dir(str(result_dir), mask=True)
    loaded = result_folders.load(str(result_dir), mask_folder="mask")
    generated, targets, masks = loaded.generated, loaded.targets, loaded.masks
    masked_g = [metrics.apply_mask(g, m) for g, m in zip(generated, masks, strict=True)]
    masked_x = [metrics.apply_mask(x, m) for x, m in zip(targets, masks, strict=True)]
    expected_ssim = np.mean([metrics.ssim(g, x) for g, x in zip(masked_g, masked_x, strict=True)])
    assert scores["ssim_mean"] == pytest.approx(expected_ssim)
    full = folder_scores.score_result_dir(str(result_dir), mask=True, mask_folder="mask_target")
    assert full["l1_mean"] == pytest.approx(SHIFT / 3)


def test_without_the_graph_the_message_names_url_and_flag_and_ssim_is_computed(result_dir):
    scores = folder_scores.score_result_dir(str(result_dir))
    assert scores["is_mean"] is None and scores["fid"] is None
    assert 0.0 < scores["ssim_mean"] < 1.0
    (note,) = scores["notes"]
    assert metrics.INCEPTION_URL in note
    assert "--inception_graph" in note and folder_scores.INCEPTION_GRAPH_ENV in note


def test_the_graph_path_can_come_from_the_environment(result_dir, graph_path, monkeypatch):
    monkeypatch.setenv(folder_scores.INCEPTION_GRAPH_ENV, graph_path)
    scores = folder_scores.score_result_dir(str(result_dir))
    assert scores["inception_graph"] == graph_path
    assert scores["is_mean"] == pytest.approx(3.0, rel=1e-6)


def test_a_given_graph_path_that_does_not_exist_fails_before_scoring(result_dir, tmp_path):
    with pytest.raises(DataError, match=r"--inception_graph=.*inception-2015-12-05\.tgz"):
        folder_scores.score_result_dir(
            str(result_dir), inception_graph=str(tmp_path / "missing.tgz")
        )


def test_unequal_g_and_x_target_counts_are_a_data_error(result_dir):
    os.remove(result_dir / "x_target" / "00003.png")
    with pytest.raises(DataError, match="30 images in G/ but 29 in x_target/"):
        folder_scores.score_result_dir(str(result_dir))


def test_an_empty_g_folder_is_a_data_error(result_dir):
    for name in os.listdir(result_dir / "G"):
        os.remove(result_dir / "G" / name)
    with pytest.raises(DataError, match="no .png/.jpg images"):
        folder_scores.score_result_dir(str(result_dir))


def test_a_missing_mask_folder_is_a_data_error(result_dir):
    with pytest.raises(DataError, match="not found"):
        folder_scores.score_result_dir(str(result_dir), mask=True, mask_folder="no_such_masks")


def test_cli_missing_result_dir_prints_one_error_line_and_exits_2(tmp_path):
    completed = run_score_cli(f"--result_dir={tmp_path / 'nowhere'}")
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: --result_dir=") and "G/ and x_target/" in lines[0]


def test_cli_without_result_dir_flag_exits_2():
    completed = run_score_cli()
    assert completed.returncode == 2
    assert "--result_dir is required" in completed.stderr
