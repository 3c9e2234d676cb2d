"""Training and test mode: the original's two jobs, as functions of plain config objects.

Rule: imports ``pg2_tf.core``, ``pg2_tf.records`` and ``pg2_tf.networks``; reads no flags.
"""
