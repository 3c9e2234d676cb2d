"""pg2_tf: TensorFlow 2 / Keras 3 port of Pose Guided Person Image Generation (PG2, NIPS 2017).

Submodules are imported on demand so that command-line tools start quickly:
``pg2_tf.models``, ``pg2_tf.losses``, ``pg2_tf.tf1_checkpoint``, ``pg2_tf.data``, ``pg2_tf.train``,
``pg2_tf.export``, ``pg2_tf.metrics``.
"""

__version__ = "0.1.0"
