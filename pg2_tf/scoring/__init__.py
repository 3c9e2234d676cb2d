"""Scoring: SSIM, IS, FID and the rest, under a named protocol (``pg2`` or ``patn``).

``metrics`` (the scores and the Inception graph), ``protocols`` (what each protocol computes),
``result_folders`` (reading a folder), ``folder_scores`` (a folder's numbers), ``reports`` (the
score files, table and JSON) and ``job`` (what ``pg2-score`` does).

Rule: imports ``pg2_tf.core`` and ``pg2_tf.records``; needs no network of this project.
"""
