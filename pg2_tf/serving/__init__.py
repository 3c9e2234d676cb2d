"""Serving: the SavedModel contract, exporting one, and running it on the machine at hand.

``contract`` (signatures, metadata, loading), ``graph`` (the ops the SavedModel runs),
``export_lib`` (writing it: ``from pg2_tf.serving.export_lib import export_saved_model``),
``rebuild`` and ``litert`` (faster ways to compute the same weights), ``engines`` (the precision
and the engine), ``inference_queue`` (several users, one engine).

Rule: imports ``pg2_tf.core`` and ``pg2_tf.networks``; reads no flags.
"""
