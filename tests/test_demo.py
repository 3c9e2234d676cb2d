"""The Quick start's job runs end to end (shortened) and leaves what it promises."""

import os

import numpy as np
import pytest
from PIL import Image

from pg2_tf import demo


def test_demo_builds_data_trains_tests_scores_and_exports(tmp_path):
    made = demo.run_demo(str(tmp_path), steps=4, conv_hidden_num=8, batch_size=4, identities=2)
    assert made["num_test_results"] == 12  # 2 synthetic people x 3 images x 2 targets each
    assert len(os.listdir(os.path.join(made["result_dir"], "G"))) == 12
    assert set(made["last_losses"]) >= {"g_loss2", "d_loss"}  # reached stage 2
    assert 0.0 < made["scores"]["rgb"]["ssim_mean"] < 1.0
    for name in ("score_rgb.txt", "score_mask.txt"):
        assert os.path.exists(os.path.join(made["result_dir"], name))
    assert os.path.exists(os.path.join(made["export_dir"], "saved_model.pb"))
    summary = np.asarray(Image.open(made["summary"]))
    # A header row naming the 5 columns, then 8 rows of 128x64 test pictures.
    assert summary.shape == (demo.HEADER_HEIGHT + 8 * (128 + 2) + 2, 5 * 64 + 6 * 2, 3)
    assert summary.std() > 10
    header = summary[: demo.HEADER_HEIGHT]
    for column in range(5):  # white label text over each column
        assert (header[:, 2 + column * 66 : (column + 1) * 66] > 200).any()
    # The L1 of G2 the demo prints is the score module's, independently read from the folders.
    assert made["l1"]["G2"] == pytest.approx(made["scores"]["rgb"]["l1_mean"])
    assert 0 < made["l1"]["G1"] < 255
