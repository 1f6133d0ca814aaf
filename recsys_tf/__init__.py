"""recsys-tf: a teaching and reproduction kit for personalized e-commerce recommendation.

The package does the computing; the notebooks in ``notebooks/`` teach. Importing
``recsys_tf`` is cheap: TensorFlow/Keras are imported only by the modules that need them
(the Keras models of ``recsys_tf.models``, which imports each class when first asked for, and
``recsys_tf.features``).
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"
# TensorFlow's C++ info and warning lines (CPU instruction sets, missing CUDA) drown notebook
# output (on a CPU-only machine even as "errors": no CUDA driver); Python exceptions still show.
# Set TF_CPP_MIN_LOG_LEVEL yourself to override.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from recsys_tf.errors import ChecksumError, DataError, DataNotFoundError
from recsys_tf.utils import seed_everything

__all__ = ["ChecksumError", "DataError", "DataNotFoundError", "seed_everything", "__version__"]
