"""Item content features: text (TF-IDF + SVD, a trainable Keras text encoder) and pictures
(colour histograms, shape and texture descriptors). Each returns one row per item, L2-normalised
where a cosine similarity is the natural comparison."""

from recsys_tf.features.image import colour_histogram, image_features, shape_descriptors, texture_descriptors
from recsys_tf.features.text import TextEncoder, tfidf_svd

__all__ = ["TextEncoder", "colour_histogram", "image_features", "shape_descriptors", "texture_descriptors", "tfidf_svd"]
