"""Speed of the item content encoders on the small shop's whole catalog (1,500 products).

    python bench/bench_features.py   ->  bench/results/features.json

Items per second for each text and picture encoder, batched as the notebooks run them (the
first batch, where a compiled function is traced, is included: it is what a user waits for).
The pretrained encoders are measured when installed and listed as skipped otherwise.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("RECSYS_TF_PROGRESS", "0")

from recsys_tf.data.shop import make_shop  # noqa: E402
from recsys_tf.features import (PictureAutoencoder, PictureEncoder, SentenceEncoder, TextEncoder, TfidfLSA,  # noqa: E402
                                image_features)
from recsys_tf.speed import device_name  # noqa: E402
from recsys_tf.utils import atomic_write  # noqa: E402

OUT = Path(__file__).parent / "results" / "features.json"


def main() -> None:
    shop = make_shop("small", seed=0)
    cat = shop.catalog
    texts, titles, pictures = cat["text"].tolist(), cat["title"].tolist(), shop.pictures(cat.item_id)
    runs = {
        "text: TF-IDF + SVD (64-d, fit + transform)": lambda: TfidfLSA(64).fit_transform(texts),
        "text: Keras TextVectorization + embedding (adapt + encode)": lambda: TextEncoder(32).adapt(texts).encode(texts),
        "pictures: colour + shape + texture descriptors (64 px)": lambda: image_features(pictures),
        "pictures: autoencoder, 20 epochs of training + encoding (32 px)": lambda: PictureAutoencoder(epochs=20, verbose=False).fit(pictures).encode(pictures),
    }
    skipped = []
    if SentenceEncoder.available():
        runs["text: all-MiniLM-L6-v2, titles (32 tokens)"] = lambda: SentenceEncoder(sequence_length=32).encode(titles)
        runs["text: all-MiniLM-L6-v2, title + description (64 tokens)"] = lambda: SentenceEncoder(sequence_length=64).encode(texts)
    else:
        skipped.append("all-MiniLM-L6-v2 (not installed)")
    if PictureEncoder.available():
        runs["pictures: EfficientNet-Lite0 (224 px, batch 64)"] = lambda: PictureEncoder(batch_size=64).encode(pictures)
    else:
        skipped.append("EfficientNet-Lite0 (weights not installed)")
    res = {"device": device_name(), "items": len(cat), "items_per_s": {}, "seconds": {}, "skipped": skipped}
    for name, fn in runs.items():
        start = time.perf_counter()
        fn()
        sec = time.perf_counter() - start
        res["seconds"][name], res["items_per_s"][name] = round(sec, 2), round(len(cat) / sec, 1)
        print(f"{name}: {len(cat) / sec:,.0f} items/s ({sec:.1f} s)", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(OUT, json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
