"""Look inside item vectors: nearest neighbours, 2-D maps (PCA, t-SNE), a TensorBoard projector export.

Vectors make a recommendation explainable when their geometry means something: similar items
close, kinds of items in regions of their own. These tools show whether it does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError
from recsys_tf.utils import atomic_write, unit_rows


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or not len(v):
        raise DataError(f"vectors must be a non-empty items x d array, got shape {v.shape}.")
    return unit_rows(v)


def nearest_neighbours(vectors: np.ndarray, queries: Sequence[int], k: int = 5) -> np.ndarray:
    """Rows of the ``k`` items most cosine-similar to each query row (the query itself left out)."""
    v = _unit(vectors)
    q = np.asarray(queries)
    sim = v[q] @ v.T
    sim[np.arange(len(q)), q] = -np.inf
    top = np.argpartition(-sim, min(k, sim.shape[1] - 1), axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable"), axis=1)


def neighbour_agreement(vectors: np.ndarray, labels: Sequence, k: int = 1) -> float:
    """Share of items whose ``k`` nearest neighbours carry the item's own label (mean over items)."""
    lab = np.asarray(labels)
    if len(lab) != len(vectors):
        raise DataError(f"{len(lab)} labels for {len(vectors)} vectors.")
    nn = np.vstack([nearest_neighbours(vectors, np.arange(s, min(s + 2048, len(lab))), k)
                    for s in range(0, len(lab), 2048)])  # fmt: skip
    return float((lab[nn] == lab[:, None]).mean())


def embedding_map(vectors: np.ndarray, method: Literal["pca", "tsne"] = "pca", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D coordinates of the (L2-normalised) vectors: PCA's two strongest directions, or t-SNE
    (van der Maaten & Hinton, JMLR 2008), which keeps neighbourhoods rather than distances."""
    v = _unit(vectors)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(2, random_state=seed).fit_transform(v)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, perplexity=min(perplexity, (len(v) - 1) / 3), init="pca", random_state=seed).fit_transform(v)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")


def export_projector(folder: str | Path, vectors: np.ndarray, metadata: pd.DataFrame, pictures: np.ndarray | None = None,
                     name: str = "items") -> Path:  # fmt: skip
    """Write vectors, metadata and (optionally) a sprite of product pictures for TensorBoard's projector.

    Open with ``tensorboard --logdir <folder>`` -> Projector tab, or load ``tensors.tsv`` and
    ``metadata.tsv`` at projector.tensorflow.org. Returns the config file's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    v = np.asarray(vectors, dtype=np.float32)
    if len(metadata) != len(v):
        raise DataError(f"metadata has {len(metadata)} rows for {len(v)} vectors.")
    np.savetxt(folder / "tensors.tsv", v, delimiter="\t", fmt="%.5f")
    meta = metadata.astype(str).replace({"\t": " ", "\n": " "}, regex=True)
    meta.to_csv(folder / "metadata.tsv", sep="\t", index=False)
    lines = ["embeddings {", f'  tensor_name: "{name}"', '  tensor_path: "tensors.tsv"', '  metadata_path: "metadata.tsv"']
    if pictures is not None:
        from PIL import Image

        p = np.asarray(pictures, dtype=np.uint8)
        if len(p) != len(v):
            raise DataError(f"{len(p)} pictures for {len(v)} vectors.")
        side, size = int(np.ceil(np.sqrt(len(p)))), p.shape[1]
        sprite = np.full((side * side, size, size, 3), 255, np.uint8)
        sprite[: len(p)] = p
        sprite = sprite.reshape(side, side, size, size, 3).transpose(0, 2, 1, 3, 4).reshape(side * size, side * size, 3)
        Image.fromarray(sprite).save(folder / "sprite.png")
        lines += ["  sprite {", '    image_path: "sprite.png"', f"    single_image_dim: {size}", f"    single_image_dim: {size}", "  }"]
    atomic_write(folder / "projector_config.pbtxt", "\n".join(lines + ["}"]) + "\n")
    return folder / "projector_config.pbtxt"


def co_interaction_rate(vectors: np.ndarray, item_codes: np.ndarray, user_codes: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Do content neighbours share shoppers? Share of items whose nearest neighbour (by ``vectors``)
    was interacted with by at least one of the same users -- and the same share for a random other
    item (chance). ``item_codes`` / ``user_codes``: one interaction per position, items indexing the
    rows of ``vectors``. A content space worth using for recommendation beats chance by far."""
    import scipy.sparse as sp

    n_items = len(vectors)
    x = sp.csr_matrix((np.ones(len(item_codes), np.float32), (np.asarray(user_codes), np.asarray(item_codes))),
                      shape=(int(np.max(user_codes)) + 1, n_items))  # fmt: skip
    x.data[:] = 1.0
    active = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() > 0)
    if len(active) < 2:
        raise DataError("fewer than two items have interactions: nothing to compare.")
    xt = x.T.tocsr()
    nn = np.concatenate([nearest_neighbours(vectors[active], np.arange(s, min(s + 2048, len(active))), 1)[:, 0]
                         for s in range(0, len(active), 2048)])  # fmt: skip
    rng = np.random.default_rng(seed)
    other = (np.arange(len(active)) + rng.integers(1, len(active), len(active))) % len(active)

    def shared(a: np.ndarray, b: np.ndarray) -> float:
        return float((np.asarray(xt[active[a]].multiply(xt[active[b]]).sum(axis=1)).ravel() > 0).mean())

    rows = np.arange(len(active))
    return {"nearest neighbour": shared(rows, nn), "random item": shared(rows, other), "items": len(active)}
