"""Item content features: shapes, determinism, and similar items nearer than dissimilar ones."""

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.shop_catalog import render_pictures
from recsys_tf.errors import DataError
from recsys_tf.features import TextEncoder, colour_histogram, image_features, shape_descriptors, texture_descriptors, tfidf_svd

TEXTS = [
    "red leather ankle boots with a rubber sole",
    "black leather chelsea boots, rubber sole",
    "ceramic coffee mug with a glossy glaze",
    "white ceramic travel mug, glossy",
    "wireless headphones with long battery life",
    "wireless earbuds with long battery life",
]


def test_tfidf_svd_puts_similar_texts_together():
    z = tfidf_svd(TEXTS, dim=4)
    assert z.shape == (6, 4) and np.allclose(np.linalg.norm(z, axis=1), 1)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 2] and sim[2, 3] > sim[2, 4] and sim[4, 5] > sim[4, 0]
    assert np.allclose(z, tfidf_svd(TEXTS, dim=4))


def test_text_encoder_shapes_and_determinism():
    enc = TextEncoder(dim=8, seed=1).adapt(TEXTS)
    z = enc.encode(TEXTS)
    assert z.shape == (6, 8) and np.allclose(z, TextEncoder(dim=8, seed=1).adapt(TEXTS).encode(TEXTS), atol=1e-6)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 4]  # shared words "leather boots rubber sole"


def test_text_input_is_checked():
    with pytest.raises(DataError, match="not strings"):
        tfidf_svd(["a", None, "b"])
    with pytest.raises(DataError, match="no texts"):
        tfidf_svd([])


def _catalog(rows):
    return pd.DataFrame(rows, columns=["category", "colour", "style"]).assign(item_id=range(len(rows)))


def test_picture_descriptors_separate_colour_shape_and_texture():
    cat = _catalog([("Mugs", "red", "classic"), ("Mugs", "red", "classic"), ("Mugs", "blue", "classic"),
                    ("Lamps", "red", "classic"), ("Mugs", "red", "retro")])  # fmt: skip
    pics = render_pictures(cat)
    colour, shape, texture = colour_histogram(pics), shape_descriptors(pics), texture_descriptors(pics)
    assert colour.shape == (5, 64) and np.allclose(colour.sum(axis=1), 1)
    assert shape.shape == (5, 20) and texture.shape == (5, 9)

    def d(a, i, j):
        return np.linalg.norm(a[i] - a[j])

    assert d(colour, 0, 1) == 0 and d(colour, 0, 2) > d(colour, 0, 3)  # colour sees red vs blue, not the shape
    assert d(shape, 0, 1) == 0 and d(shape, 0, 3) > d(shape, 0, 2)  # shape sees mug vs lamp, not the colour
    assert d(texture, 0, 4) > 10 * d(texture, 0, 2)  # checks vs solid matter, the hue hardly
    both = image_features(pics)
    assert both.shape == (5, 93) and np.allclose(both, image_features(pics))


def test_picture_input_is_checked():
    with pytest.raises(DataError, match="n x height x width x 3"):
        colour_histogram(np.zeros((2, 8, 8)))
