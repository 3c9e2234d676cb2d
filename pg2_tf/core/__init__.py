"""Definitions: the plain values every layer shares.

Datasets, poses, image encodings, errors for the user, the CPU's abilities, files written whole.
Rule: numpy and the standard library only; no TensorFlow at import time, nothing from another
``pg2_tf`` package.
"""
