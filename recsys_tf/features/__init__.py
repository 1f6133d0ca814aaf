"""Item content features: text (TF-IDF + SVD, a trainable Keras encoder, pretrained sentence
embeddings), pictures (colour, shape and texture descriptors, pretrained CNN embeddings, an
autoencoder trained on the catalog), attribute one-hots, and tools to combine and inspect them.
Each encoder returns one row per item, L2-normalised where cosine similarity is the natural
comparison."""

from recsys_tf.utils import import_keras_quietly

import_keras_quietly()  # before any encoder imports Keras: keeps TensorFlow's start-up lines out of notebooks

from recsys_tf.features.cnn import PictureAutoencoder, PictureEncoder, efficientnet_lite0  # noqa: E402
from recsys_tf.features.image import colour_histogram, image_features, shape_descriptors, texture_descriptors  # noqa: E402
from recsys_tf.features.maps import co_interaction_rate, embedding_map, export_projector, nearest_neighbours, neighbour_agreement  # noqa: E402
from recsys_tf.features.table import attribute_features, drop_blocks, feature_table  # noqa: E402
from recsys_tf.features.text import SentenceEncoder, TextEncoder, TfidfLSA, tfidf_svd  # noqa: E402

__all__ = [
    "PictureAutoencoder", "PictureEncoder", "SentenceEncoder", "TextEncoder", "TfidfLSA", "attribute_features", "co_interaction_rate", "colour_histogram",
    "drop_blocks", "efficientnet_lite0", "embedding_map", "export_projector", "feature_table", "image_features",
    "nearest_neighbours", "neighbour_agreement", "shape_descriptors", "texture_descriptors", "tfidf_svd",
]  # fmt: skip
