"""pg2_tf: TensorFlow 2 / Keras 3 port of Pose Guided Person Image Generation (PG2, NIPS 2017).

Submodules are imported on demand so that command-line tools start quickly:
``pg2_tf.networks.models``, ``pg2_tf.networks.losses``, ``pg2_tf.networks.tf1_checkpoint``, ``pg2_tf.records.reader``, ``pg2_tf.training.train``,
``pg2_tf.export``, ``pg2_tf.scoring.metrics``.
"""

__version__ = "0.1.0"
