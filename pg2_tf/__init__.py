"""pg2_tf: TensorFlow 2 / Keras 3 port of Pose Guided Person Image Generation (PG2, NIPS 2017).

The library is in layer packages (docs/architecture.md): ``core``, ``records``, ``networks``,
``training``, ``scoring``, ``people``, ``serving``, ``apps``; the command lines are the modules
at this level (``python -m pg2_tf.main``, ``pg2_tf.export``, ...). Submodules are imported on
demand, so that a command refuses a bad flag before TensorFlow loads.
"""

import os

__version__ = "0.1.0"

# TensorFlow's C++ start-up lines (oneDNN, CPU features, absl's InitializeLog notice) are noise
# to a user: hidden unless the user set the variable. It must be set before TensorFlow loads,
# and every module of this project imports this package first.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
