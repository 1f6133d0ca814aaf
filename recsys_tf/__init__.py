"""recsys-tf: a teaching and reproduction kit for personalized e-commerce recommendation.

The package does the computing; the notebooks in ``notebooks/`` teach. Importing
``recsys_tf`` is cheap: TensorFlow/Keras are imported only by the modules that train
models (``recsys_tf.models``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from recsys_tf.errors import ChecksumError, DataError, DataNotFoundError
from recsys_tf.utils import seed_everything

__all__ = ["ChecksumError", "DataError", "DataNotFoundError", "seed_everything", "__version__"]
