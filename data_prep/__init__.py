"""data_prep: the commands that build records in the original's format.

The original's converters (``convert_market.py``, ``convert_DF.py``), records from annotation
CSVs, the official releases, your own photos and videos, and synthetic data. Rule: data_prep
imports ``pg2_tf``; ``pg2_tf`` never imports data_prep.
"""

import pg2_tf  # noqa: F401  (hides TensorFlow's C++ start-up lines before it loads)
