"""A run is never lost: resuming across epochs, a lost state file, new rates, damaged checkpoints,
a second process, full or read-only disks and leftovers of a kill (issue 11)."""

import errno
import os
import shutil
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import main_error, record_batches, tiny_config

from pg2_tf.core import atomic
from pg2_tf.core.errors import CheckpointError, ConfigError
from pg2_tf.networks import checkpoints
from pg2_tf.training import loop, resume, run_folder, steps

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def records_dir(market_tf1_dir):
    return str(market_tf1_dir / "test_data")  # 24 records: 6 batches of 4 per epoch


@pytest.fixture(scope="module")
def straight(tmp_path_factory, records_dir):
    """An uninterrupted run to step 14 with checkpoints (and pipeline positions) every 4 steps."""
    tf.config.experimental.enable_op_determinism()
    folder = tmp_path_factory.mktemp("straight")
    loop.train(tiny_config(folder, records_dir, max_step=14, save_step=4))
    return folder


@pytest.fixture(scope="module")
def trained(straight, tmp_path_factory):
    """The straight run as it stood after step 8 (checkpoints 4 and 8)."""
    folder = tmp_path_factory.mktemp("trained") / "model"
    shutil.copytree(straight, folder)
    for step in (12, 14):
        for path in [*folder.glob(f"model.ckpt-{step}.*"), *folder.glob(f"*/*.ckpt-{step}.*")]:
            path.unlink()
    run_folder.write_state([str(folder / "model.ckpt-4"), str(folder / "model.ckpt-8")], folder)
    return folder


@pytest.fixture
def copy_of_trained(trained, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(trained, target)
    return target


class _StepCounter:
    """Counts the training steps taken (to tell a resumed run from one that started again)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = steps.Trainer.train_step

        def counting(trainer, batch, step=None, d_batch=None):
            self.count += 1
            return original(trainer, batch, step, d_batch=d_batch)

        monkeypatch.setattr(steps.Trainer, "train_step", counting)


def _weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(n for n in reader.get_variable_to_shape_map() if "/.ATTRIBUTES/" in n)
    return {n: reader.get_tensor(n) for n in names if "save_counter" not in n}


def _max_difference(prefix_a, prefix_b):
    a, b = _weights(prefix_a), _weights(prefix_b)
    assert a.keys() == b.keys()
    return max(float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a if a[k].size)


# ---- defect 1 and 11a: the input pipeline's position -------------------------------------------


@pytest.mark.slow
def test_resuming_in_a_later_epoch_and_crossing_the_next_one_equals_a_straight_run(
    copy_of_trained, records_dir, straight
):
    """Step 8 is in epoch 2 (6 batches per epoch); the resumed run crosses into epoch 3 at step
    12, where today's code crashed ('Expected 3 components but got 0')."""
    resumed = loop.train(tiny_config(copy_of_trained, records_dir, max_step=14))
    assert resumed.checkpoint.endswith("model.ckpt-14")
    worst = _max_difference(resumed.checkpoint, str(straight / "model.ckpt-14"))
    print(f"resumed at 8 (epoch 2) to 14 vs straight: max weight difference {worst:.3g}")
    assert worst == 0.0


def test_the_pipeline_position_is_saved_with_each_model_checkpoint(trained):
    """The position of step N lies beside model.ckpt-N, so a kill between the two saves still
    leaves the newest model checkpoint with its own position."""
    assert run_folder.pipeline_position(str(trained), 8) is not None


def test_a_stage2_position_counts_both_batches_of_each_original_schedule_step(
    straight, records_dir
):
    """Under the default (original) schedule a stage-2 step draws two batches (G2's, then D's):
    the position saved at step 8 (2 stage-1 steps, 6 stage-2 steps) is after batch 2 + 2 x 6,
    not after batch 8."""
    config = tiny_config(straight, records_dir)
    assert config.stage2_schedule == "original"
    keras.utils.set_random_seed(config.random_seed)  # as loop.train, before the dataset
    dataset = record_batches(records_dir, "market", 4, is_train=True, seed=config.random_seed)
    next(iter(dataset.take(1)))  # train's fixed batch: a first iterator, as in loop.train
    holder = types.SimpleNamespace(strategy=tf.distribute.get_strategy())
    fresh, _ = loop.input_pipeline(holder, dataset, config)
    order = [next(fresh)["x"].numpy() for _ in range(15)]
    resumed, manager = loop.input_pipeline(holder, dataset, config)
    assert run_folder.restore_pipeline_position(manager, 8) == run_folder.POSITION_RESTORED
    following = next(resumed)["x"].numpy()
    np.testing.assert_array_equal(following, order[2 + 2 * 6])
    assert not np.array_equal(following, order[8])


def test_an_unusable_saved_position_gives_a_fresh_order_not_a_crash(
    copy_of_trained, records_dir, caplog
):
    position = run_folder.pipeline_position(str(copy_of_trained), 8)
    data_file = position + ".data-00000-of-00001"
    with open(data_file, "r+b") as handle:
        handle.truncate(os.path.getsize(data_file) // 2)
    result = loop.train(tiny_config(copy_of_trained, records_dir, max_step=9))
    assert result.step == 9
    assert "not usable, a fresh batch order" in caplog.text


# ---- defect 2: the checkpoint state file -------------------------------------------------------


def test_a_lost_state_file_resumes_from_the_newest_complete_checkpoint(
    copy_of_trained, records_dir, monkeypatch
):
    os.remove(copy_of_trained / "checkpoint")
    counter = _StepCounter(monkeypatch)
    result = loop.train(tiny_config(copy_of_trained, records_dir, max_step=10))
    assert (result.step, counter.count) == (10, 2)  # resumed at 8, not started again
    state = tf.train.get_checkpoint_state(str(copy_of_trained))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "model.ckpt-4",
        "model.ckpt-8",
        "model.ckpt-10",
    ]


def test_a_state_file_naming_a_deleted_checkpoint_resumes_from_the_newest_on_disk(
    copy_of_trained,
):
    for path in copy_of_trained.glob("model.ckpt-8.*"):
        path.unlink()
    assert run_folder.resume_checkpoint(str(copy_of_trained)) == str(
        copy_of_trained / "model.ckpt-4"
    )
    assert tf.train.latest_checkpoint(str(copy_of_trained)).endswith("model.ckpt-4")


def test_checkpoints_that_cannot_be_read_are_refused_not_trained_over(copy_of_trained, records_dir):
    for path in copy_of_trained.glob("model.ckpt-*.data-*"):
        path.unlink()
    before = sorted(os.listdir(copy_of_trained))
    with pytest.raises(run_folder.ModelDirError, match=r"holds only incomplete checkpoints"):
        loop.train(tiny_config(copy_of_trained, records_dir, max_step=10))
    assert sorted(os.listdir(copy_of_trained)) == before


# ---- defect 3: rates given on resume --------------------------------------------------------


def test_rates_given_on_resume_are_used_and_logged(copy_of_trained, records_dir, caplog):
    config = tiny_config(copy_of_trained, records_dir, max_step=10, g_lr=1e-3, d_lr=3e-3)
    loop.train(config)
    assert "g_lr 2e-05 -> 0.001, d_lr 2e-05 -> 0.003" in caplog.text
    last = {}
    for event_file in sorted(copy_of_trained.glob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                if value.tag.startswith("misc/"):
                    last[value.tag] = (event.step, float(tf.make_ndarray(value.tensor)))
    assert last["misc/g_lr"] == (10, pytest.approx(1e-3))
    assert last["misc/d_lr"] == (10, pytest.approx(3e-3))
    reader = tf.train.load_checkpoint(str(copy_of_trained / "model.ckpt-10"))
    rates = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map() if "rate" in n}
    assert sorted(rates.values()) == pytest.approx([1e-3, 1e-3, 3e-3])


# ---- defect 4: a damaged newest checkpoint -------------------------------------------------


def _damage(prefix, how):
    data_file = f"{prefix}.data-00000-of-00001"
    content = bytearray(open(data_file, "rb").read())
    if how == "truncated":
        content = content[: len(content) // 3]
    else:
        for offset in range(len(content) // 2, len(content) // 2 + 64):
            content[offset] ^= 0x5A
    open(data_file, "wb").write(bytes(content))


@pytest.mark.parametrize("how", ["truncated", "corrupted"])
def test_training_falls_back_to_the_newest_intact_checkpoint_saying_why(
    copy_of_trained, caplog, how
):
    _damage(str(copy_of_trained / "model.ckpt-8"), how)
    assert run_folder.resume_checkpoint(str(copy_of_trained)) == str(
        copy_of_trained / "model.ckpt-4"
    )
    assert f"checkpoint {copy_of_trained / 'model.ckpt-8'} is damaged (" in caplog.text
    assert "resuming from model.ckpt-4, the newest intact checkpoint (1 damaged" in caplog.text


class _CheckpointReads:
    """Records the model checkpoints restored and the tensors read one by one (integrity checks)."""

    def __init__(self, monkeypatch):
        self.restored, self.tensors_read = [], 0
        restore, load = tf.train.Checkpoint.restore, tf.train.load_checkpoint

        def counting_restore(checkpoint, prefix, *args, **kwargs):
            if os.path.basename(prefix).startswith(run_folder.CHECKPOINT_NAME):
                self.restored.append(os.path.basename(prefix))
            return restore(checkpoint, prefix, *args, **kwargs)

        def counting_load(prefix):
            reader = load(prefix)
            reads = self

            class Reader:
                def __getattr__(self, name):
                    return getattr(reader, name)

                def get_tensor(self, name):
                    reads.tensors_read += 1
                    return reader.get_tensor(name)

            return Reader()

        monkeypatch.setattr(tf.train.Checkpoint, "restore", counting_restore)
        monkeypatch.setattr(tf.train, "load_checkpoint", counting_load)


@pytest.mark.slow
def test_resuming_reads_the_newest_checkpoint_once(copy_of_trained, records_dir, monkeypatch):
    reads = _CheckpointReads(monkeypatch)
    result = loop.train(tiny_config(copy_of_trained, records_dir, max_step=9))
    assert result.step == 9
    assert reads.restored == ["model.ckpt-8"]  # restored once, and no integrity check read
    assert reads.tensors_read == 0


@pytest.mark.parametrize("how", ["truncated", "corrupted"])
def test_a_fallback_restores_every_value_of_the_older_checkpoint(
    copy_of_trained, records_dir, monkeypatch, caplog, how
):
    # The damaged newest checkpoint is read (partly) into the trainer first; the older one must
    # then overwrite every value, as if it had been restored into a fresh trainer.
    _damage(str(copy_of_trained / "model.ckpt-8"), how)
    reads = _CheckpointReads(monkeypatch)
    trainer = steps.Trainer(tiny_config(copy_of_trained, records_dir))
    chosen = run_folder.resume_checkpoint(
        str(copy_of_trained), load=lambda prefix: resume.restore_checkpoint(trainer, prefix)
    )
    assert chosen == str(copy_of_trained / "model.ckpt-4")
    assert reads.restored == ["model.ckpt-8", "model.ckpt-4"]
    assert f"checkpoint {copy_of_trained / 'model.ckpt-8'} is damaged (" in caplog.text
    older = tf.train.load_checkpoint(chosen)
    values = checkpoints.object_graph_variables(trainer.checkpoint)
    assert len(values) > 20
    for key, variable in values.items():
        np.testing.assert_array_equal(variable.numpy(), older.get_tensor(key), err_msg=key)


def _corrupt_tensor(prefix, wanted):
    """Flips bytes inside the stored value of the first tensor whose key ``wanted`` accepts."""
    reader = tf.train.load_checkpoint(prefix)
    key = next(k for k in sorted(reader.get_variable_to_shape_map()) if wanted(k))
    stored = reader.get_tensor(key).tobytes()
    data_file = f"{prefix}.data-00000-of-00001"
    content = bytearray(open(data_file, "rb").read())
    offset = content.find(stored)
    assert offset >= 0 and len(stored) >= 64
    for index in range(offset, offset + 64):
        content[index] ^= 0x5A
    open(data_file, "wb").write(bytes(content))


def _is_generator_kernel(key):
    return key.startswith("g2/") and "OPTIMIZER_SLOT" not in key and "kernel" in key


def test_test_mode_and_export_name_the_damaged_checkpoint(copy_of_trained):
    _corrupt_tensor(str(copy_of_trained / "model.ckpt-8"), _is_generator_kernel)
    from pg2_tf.networks import models

    g1, g2, _ = models.build(1, 128, 64, 8, 64, 8)
    with pytest.raises(CheckpointError, match=r"checkpoint .*model.ckpt-8 is damaged \("):
        checkpoints.load_generators(str(copy_of_trained / "model.ckpt-8"), g1, g2)


def test_test_mode_and_export_read_only_the_generators(copy_of_trained):
    # D and the Adam slots are not loaded by test mode or export, so they are not read either.
    prefix = str(copy_of_trained / "model.ckpt-8")
    _corrupt_tensor(prefix, lambda key: key.startswith("d/") and "kernel" in key)
    from pg2_tf.networks import models

    g1, g2, _ = models.build(1, 128, 64, 8, 64, 8)
    assert checkpoints.load_generators(prefix, g1, g2) == prefix
    assert checkpoints.damage(prefix) is not None  # training's resume still reads everything


# ---- defect 5: one process per model_dir ------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pg2_tf.training import run_folder
    with run_folder.Lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
    """
)


def test_a_second_process_is_refused_naming_the_holder_and_kill_9_releases_it(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(run_folder.ModelDirError, match=rf"in use .*\(pid {holder.pid},"):
            with run_folder.Lock(str(tmp_path)):
                pass
    finally:
        holder.kill()  # SIGKILL: no chance to unlock
        holder.wait()
    with run_folder.Lock(str(tmp_path)):
        assert open(tmp_path / run_folder.LOCK_NAME).read().strip() == str(os.getpid())


# ---- defect 8: full disk, read-only folder -----------------------------------------------------


def test_a_full_disk_while_saving_is_one_line_with_the_space_needed(
    copy_of_trained, records_dir, monkeypatch
):
    def full_disk(self, checkpoint_number=None, **_):
        os.makedirs(f"{self._checkpoint_prefix}-{checkpoint_number}_temp")  # the partial write
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    with pytest.raises(run_folder.ModelDirError) as caught:
        loop.train(tiny_config(copy_of_trained, records_dir, max_step=9))
    message = str(caught.value)
    assert "\n" not in message
    assert "model.ckpt-9 failed: No space left on device" in message
    assert "MB needed" in message and "MB free" in message
    assert message.endswith(f"the last checkpoint {copy_of_trained / 'model.ckpt-8'} is intact")
    assert not list(copy_of_trained.glob("**/*_temp"))
    monkeypatch.undo()
    assert checkpoints.damage(str(copy_of_trained / "model.ckpt-8")) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_really_full_tmpfs_keeps_the_earlier_checkpoints(trained, records_dir, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]).returncode:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        folder = mount / "model"
        folder.mkdir()
        for path in trained.glob("model.ckpt-8.*"):
            shutil.copy(path, folder)
        run_folder.write_state([str(folder / "model.ckpt-8")], folder)
        ballast = mount / "ballast"
        free = shutil.disk_usage(mount).free
        ballast.write_bytes(b"\0" * max(0, free - 256 * 1024))
        with pytest.raises(run_folder.ModelDirError, match=r"disk full \(about .* MB needed"):
            loop.train(tiny_config(folder, records_dir, max_step=9, log_step=1000))
        assert checkpoints.damage(str(folder / "model.ckpt-8")) is None
        assert tf.train.latest_checkpoint(str(folder)).endswith("model.ckpt-8")
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def test_a_model_dir_that_cannot_be_written_is_one_line(tmp_path, records_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(run_folder.ModelDirError, match=r"cannot write in --model_dir=.*file/model"):
        loop.train(tiny_config(blocker / "model", records_dir))


# ---- defect 11: leftovers of a kill ------------------------------------------------------------


def test_leftovers_of_a_killed_run_are_removed_on_start(copy_of_trained):
    (copy_of_trained / "model.ckpt-9_temp").mkdir()
    (copy_of_trained / "model.ckpt-9_temp" / "part-00000-of-00001.index").write_bytes(b"x")
    (copy_of_trained / "input_pipeline" / "input_pipeline.ckpt-9_temp").mkdir()
    (copy_of_trained / "6_G1.png.tmp.png").write_bytes(b"x")  # an older version's name
    with open(atomic.temporary_path(copy_of_trained / "params.json"), "w") as handle:
        handle.write("{")  # params.json, killed while it was written
    kept = sorted(os.listdir(copy_of_trained))
    assert len(run_folder.remove_leftovers(str(copy_of_trained))) == 4
    assert sorted(os.listdir(copy_of_trained)) == [
        n for n in kept if "tmp" not in n and "_temp" not in n and "partial" not in n
    ]
    assert os.listdir(copy_of_trained / "input_pipeline") and not list(
        copy_of_trained.glob("input_pipeline/*_temp")
    )


def test_start_step_at_or_beyond_max_step_is_refused(tmp_path, records_dir):
    with pytest.raises(ConfigError, match=r"--start_step=50 is not below --max_step=10"):
        loop.train(tiny_config(tmp_path, records_dir, start_step=50, max_step=10))
    assert not list(tmp_path.glob("model.ckpt-*"))


def test_a_flag_mismatch_on_the_command_line_leaves_params_json_alone(copy_of_trained, records_dir):
    params = copy_of_trained / "params.json"
    params.write_text('{"conv_hidden_num": 8}')
    data_dir = copy_of_trained.parent / "data"
    data_dir.mkdir()
    (data_dir / "Market_test_data").symlink_to(records_dir)
    error = main_error(
        "--dataset=Market_test_data",
        f"--data_dir={data_dir}",
        "--split=test",
        f"--model_dir={copy_of_trained}",
        "--conv_hidden_num=16",
        "--d_dim=8",
        "--batch_size=4",
        "--max_step=10",
    )
    assert error == (
        f"error: --conv_hidden_num=16 does not fit {copy_of_trained}/model.ckpt-8, which has "
        "conv_hidden_num=8: pass --conv_hidden_num=8 to resume it, or use another --model_dir"
    )
    assert params.read_text() == '{"conv_hidden_num": 8}'


@pytest.mark.slow
def test_kill_9_at_random_moments_with_a_save_every_step_loses_nothing(tmp_path):
    """A SIGKILL at a random moment of a run saving every step, then a rerun: it resumes from the
    newest intact checkpoint at the kill, with its pipeline position, and the end equals a
    straight run (benchmarks/soak_resume.py does the same 30 times; one kill here keeps the
    suite within its time budget)."""
    from benchmarks import soak_resume

    figures = soak_resume.soak(str(tmp_path), kills=1, max_step=14, seed=1, max_delay=4.0)
    print(figures)
    assert figures["problems"] == []
    assert (figures["kills"], figures["resumes_verified"]) == (1, 1)
    assert figures["steps_lost"] == [0]
    assert figures["final_run_restored_pipeline"]
    assert figures["max_weight_difference"] == 0.0


def test_only_the_newest_pipeline_positions_are_kept_whatever_max_to_keep_says(straight):
    """Positions hold the shuffle buffer (tens to hundreds of MB on real data): the newest
    PIPELINE_POSITIONS_KEPT stay, beside all the model checkpoints max_to_keep keeps."""
    positions = run_folder.complete_checkpoints(
        str(straight / run_folder.PIPELINE_DIR), run_folder.PIPELINE_NAME
    )
    models = run_folder.complete_checkpoints(str(straight))
    assert sorted(run_folder.step_of(p) for p in models) == [4, 8, 12, 14]
    assert sorted(run_folder.step_of(p) for p in positions) == [8, 12, 14]
