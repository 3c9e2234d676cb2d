"""Networks and checkpoints: G1, G2, D, their losses, and loading either kind of checkpoint.

Whether a checkpoint fits the flags is decided in :mod:`pg2_tf.networks.checkpoint_fit` only.
Rule: imports only ``pg2_tf.core``.
"""
