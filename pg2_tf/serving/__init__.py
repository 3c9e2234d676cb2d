"""Serving: the SavedModel contract, exporting one, and running it on the machine at hand.

Rule: imports ``pg2_tf.core`` and ``pg2_tf.networks``.
"""
