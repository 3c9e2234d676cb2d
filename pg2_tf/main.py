"""``python -m pg2_tf.main``: train or test PG2 with the original's command line.

    python -m pg2_tf.main --dataset=Market_train_data --img_H=128 --img_W=64 --batch_size=16 \\
        --max_step=60000 --d_lr=0.00002 --g_lr=0.00002 --lr_update_step=50000 --is_train=True \\
        --model=1 --D_arch=DCGAN --gpu=0 --z_num=64 --model_dir=<dir>

Flags: :mod:`pg2_tf.flags`. Bad flags or data print one ``error:`` line and exit with status 2.

Speed and scale (docs/performance.md): ``--mixed_precision`` (float16 on GPUs, bfloat16 on CPUs),
``--xla``, ``--distribute=mirrored`` (all GPUs of the host) or ``--distribute=multi_worker``
(every host runs the same command with its own TF_CONFIG; the chief writes model_dir).

Rule: a command line only: it reads the flags, makes the plain configs and calls the library
(:func:`pg2_tf.training.loop.train`, :mod:`pg2_tf.training.test_mode`, the scorer, the export).
"""

import os
import signal

from absl import logging

from pg2_tf import cli
from pg2_tf import flags as pg2_flags
from pg2_tf.core import configs

FLAGS = pg2_flags.FLAGS


def _configure_devices(use_gpu: bool, gpu: int) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not use_gpu:
        tf.config.set_visible_devices([], "GPU")
    elif gpu > -1 and gpus:
        if gpu >= len(gpus):
            from pg2_tf.core.errors import ConfigError

            raise ConfigError(f"--gpu={gpu} but only {len(gpus)} GPU(s) are visible")
        tf.config.set_visible_devices(gpus[gpu], "GPU")
    for device in tf.config.get_visible_devices("GPU"):
        tf.config.experimental.set_memory_growth(device, True)  # the original's allow_growth


def make_strategy(name: str):
    """The tf.distribute strategy for ``--distribute``.

    Create it before any other TensorFlow work: the multi-worker strategy configures the
    runtime's collective ops.

    Args:
        name: "none", "mirrored" or "multi_worker".

    Returns:
        None for "none" (one device), a MirroredStrategy (all visible GPUs, or the CPU) or a
        MultiWorkerMirroredStrategy (cluster and this host's role from the TF_CONFIG
        environment variable).
    """
    import tensorflow as tf

    if name == "none":
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            logging.warning("--distribute=multi_worker without TF_CONFIG: one worker, this host")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}")


def main(argv):
    """Trains (``--is_train``) or writes the test results (and scores, an export) as asked.

    Args:
        argv: the arguments absl left (none are used).

    Returns:
        The exit status: 0, or 128 + the signal number when a signal stopped training.
    """
    del argv
    pg2_flags.validate(FLAGS)
    train_config, run_config = pg2_flags.to_configs(FLAGS)
    logging.set_verbosity(
        {"INFO": logging.INFO, "DEBUG": logging.DEBUG, "WARN": logging.WARN}[run_config.log_level]
    )
    _configure_devices(run_config.use_gpu, run_config.gpu)

    from pg2_tf.training import loop, precision

    # Before TensorFlow runs anything: thread pools, then the strategy, then the dtype policy.
    inter_op = precision.configure_threads(run_config.inter_op_threads, run_config.intra_op_threads)
    strategy = make_strategy(run_config.distribute)
    if run_config.mixed_precision:
        import keras

        policy = precision.mixed_precision_policy()
        keras.mixed_precision.set_global_policy(policy)  # test mode builds its models under it
        logging.info("mixed precision: %s", policy)
    logging.info("inter-op threads: %s", inter_op or "TensorFlow's default")
    if strategy is not None:
        logging.info("%s with %d replicas", type(strategy).__name__, strategy.num_replicas_in_sync)
    logging.info("model_dir: %s", run_config.model_dir)
    if run_config.export_dir:
        from pg2_tf.serving import export_lib

        export_lib.check_export_dir(run_config.export_dir)  # before hours of training, not after

    status = 0
    if run_config.is_train:
        # loop.train holds model_dir's lock (the chief's) while it runs.
        result = loop.train(train_config, strategy=strategy, params=pg2_flags.flag_dict(FLAGS))
        print(
            f"training stopped ({result.stopped_by}) at step {result.step}; "
            f"checkpoint: {result.checkpoint}"
        )
        weights = result.checkpoint
        if result.stopped_by != "max_step":
            # A stopped job exits as if killed by the signal (after saving), so that schedulers
            # and shell scripts see it did not finish; the checkpoint resumes it.
            status = 128 + int(signal.Signals[result.stopped_by])
    else:
        from pg2_tf.training import test_mode

        weights = train_config.pretrained_path or train_config.ckpt_path
        count = test_mode.write_test_results(
            weights,
            run_config.data_path,
            run_config.model_dir,
            **configs.architecture(train_config),
            batch_size=train_config.batch_size,
            split=FLAGS.split if FLAGS["split"].present else "test",
            xla=train_config.xla,
        )
        result_dir = os.path.join(run_config.model_dir, "test_result")
        print(f"wrote {count} test results to {result_dir}")
        if run_config.score:
            from pg2_tf.scoring import folder_scores, protocols, reports

            # G goes through Inception once for both protocols (pg2's IS and FID, patn's).
            inception_runs = protocols.InceptionRuns()
            for mask in (False, True):
                numbers = folder_scores.score_result_dir(
                    result_dir,
                    mask=mask,
                    inception_graph=run_config.inception_graph,
                    inception_runs=inception_runs,
                )
                path = reports.write_score_file(result_dir, numbers, mask=mask)
                for note in numbers["notes"]:
                    logging.warning(note)
                kind = "masked by mask/ (score_mask.py)" if mask else "rgb (score.py)"
                print(f"{result_dir}: {numbers['num_images']} images, {kind}")
                print(reports.format_table(numbers))
                print(f"written: {path}")
            # The same images under Pose-Transfer's protocol (docs/scores.md), as JSON.
            patn = folder_scores.score_patn(
                result_dir,
                inception_graph=run_config.inception_graph,
                inception_runs=inception_runs,
            )
            patn["FID_reference"] = "the targets"
            path = os.path.join(result_dir, "score_patn.json")
            reports.write_json(path, patn)
            print(f"written: {path} (protocol patn)")
    if run_config.export_dir:
        import keras

        from pg2_tf.serving import export_lib

        keras.mixed_precision.set_global_policy("float32")  # the export is float32, portable

        path = export_lib.export_from_checkpoint(
            weights, run_config.export_dir, **configs.architecture(train_config)
        )
        print(f"exported SavedModel to {path}")
    return status


def run():
    """The ``pg2-main`` console script: :func:`main` with one-line errors (exit status 2)."""
    cli.run_main(main)


if __name__ == "__main__":
    run()
