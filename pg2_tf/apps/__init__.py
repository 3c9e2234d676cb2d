"""Photo tools and the web page: what pg2-generate, pg2-animate and pg2-app do, as functions of
plain values.

Rule: imports ``pg2_tf.core``, ``records``, ``networks``, ``people`` and ``serving``; never a
command line (no ``absl.flags``, no ``pg2_tf.cli``, no top-level command module).
"""
