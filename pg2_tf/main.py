"""``python -m pg2_tf.main``: train or test PG2 with the original's command line.

    python -m pg2_tf.main --dataset=Market_train_data --img_H=128 --img_W=64 --batch_size=16 \
        --max_step=60000 --d_lr=0.00002 --g_lr=0.00002 --lr_update_step=50000 --is_train=True \
        --model=1 --D_arch=DCGAN --gpu=0 --z_num=64 --model_dir=<dir>

Flags: :mod:`pg2_tf.flags`. Bad flags or data print one ``error:`` line and exit with status 2.
"""

import os

from absl import logging

from pg2_tf import cli
from pg2_tf import flags as pg2_flags

FLAGS = pg2_flags.FLAGS


def _configure_devices(use_gpu: bool, gpu: int) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not use_gpu:
        tf.config.set_visible_devices([], "GPU")
    elif gpu > -1 and gpus:
        if gpu >= len(gpus):
            from pg2_tf.errors import ConfigError

            raise ConfigError(f"--gpu={gpu} but only {len(gpus)} GPU(s) are visible")
        tf.config.set_visible_devices(gpus[gpu], "GPU")
    for device in tf.config.get_visible_devices("GPU"):
        tf.config.experimental.set_memory_growth(device, True)  # the original's allow_growth


def main(argv):
    del argv
    pg2_flags.validate(FLAGS)
    train_config, run_config = pg2_flags.to_configs(FLAGS)
    logging.set_verbosity(
        {"INFO": logging.INFO, "DEBUG": logging.DEBUG, "WARN": logging.WARN}[run_config.log_level]
    )
    _configure_devices(run_config.use_gpu, run_config.gpu)
    os.makedirs(run_config.model_dir, exist_ok=True)
    logging.info("model_dir: %s", run_config.model_dir)

    from pg2_tf import train

    if run_config.is_train:
        train.save_params(pg2_flags.flag_dict(FLAGS), run_config.model_dir)
        result = train.train(train_config)
        print(
            f"training stopped ({result.stopped_by}) at step {result.step}; "
            f"checkpoint: {result.checkpoint}"
        )
        weights = result.checkpoint
    else:
        from pg2_tf import evaluate

        weights = train_config.pretrained_path or train_config.ckpt_path
        count = evaluate.write_test_results(
            weights,
            run_config.data_path,
            run_config.model_dir,
            model=train_config.model,
            img_H=train_config.img_H,
            img_W=train_config.img_W,
            conv_hidden_num=train_config.conv_hidden_num,
            z_num=train_config.z_num,
            batch_size=train_config.batch_size,
            split=FLAGS.split if FLAGS["split"].present else "test",
            xla=train_config.xla,
        )
        result_dir = os.path.join(run_config.model_dir, "test_result")
        print(f"wrote {count} test results to {result_dir}")
        if run_config.score:
            from pg2_tf import score

            for mask in (False, True):
                numbers = score.score_result_dir(
                    result_dir, mask=mask, inception_graph=run_config.inception_graph
                )
                score.write_score_file(result_dir, numbers, mask=mask)
                for note in numbers["notes"]:
                    logging.warning(note)
                print(score.format_table(numbers))
    if run_config.export_dir:
        from pg2_tf import export

        path = export.export_from_checkpoint(
            weights,
            run_config.export_dir,
            model=train_config.model,
            img_H=train_config.img_H,
            img_W=train_config.img_W,
            conv_hidden_num=train_config.conv_hidden_num,
            z_num=train_config.z_num,
        )
        print(f"exported SavedModel to {path}")
    return 0


def run():
    cli.run_main(main)


if __name__ == "__main__":
    run()
