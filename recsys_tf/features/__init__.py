"""Item content features: text (TF-IDF + SVD, a trainable Keras encoder, pretrained sentence
embeddings), pictures (colour, shape and texture descriptors, pretrained CNN embeddings, an
autoencoder trained on the catalog), attribute one-hots, and tools to combine and inspect them.
Each encoder returns one row per item, L2-normalised where cosine similarity is the natural
comparison."""

from recsys_tf.features.cnn import PictureAutoencoder, PictureEncoder, efficientnet_lite0
from recsys_tf.features.image import colour_histogram, image_features, shape_descriptors, texture_descriptors
from recsys_tf.features.maps import embedding_map, export_projector, nearest_neighbours, neighbour_agreement
from recsys_tf.features.table import attribute_features, drop_blocks, feature_table
from recsys_tf.features.text import SentenceEncoder, TextEncoder, tfidf_svd

__all__ = [
    "PictureAutoencoder", "PictureEncoder", "SentenceEncoder", "TextEncoder", "attribute_features", "colour_histogram",
    "drop_blocks", "efficientnet_lite0", "embedding_map", "export_projector", "feature_table", "image_features",
    "nearest_neighbours", "neighbour_agreement", "shape_descriptors", "texture_descriptors", "tfidf_svd",
]  # fmt: skip
