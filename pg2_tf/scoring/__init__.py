"""Scoring: SSIM, IS, FID and the rest, under a named protocol (``pg2`` or ``patn``).

Rule: imports ``pg2_tf.core`` and ``pg2_tf.records``; needs no network of this project.
"""
