"""The Quick start's job runs end to end (shortened) and leaves what it promises."""

import os

import numpy as np
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
    assert summary.shape[1] == 5 * 64 + 6 * 2 and summary.std() > 10
