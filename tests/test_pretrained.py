"""Pretrained encoders: the PyTorch weight reader (no PyTorch), EfficientNet-Lite0, MiniLM, the
autoencoder. The optional pieces are skipped, with the install command, when not installed."""

import collections
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from recsys_tf.data.shop_catalog import render_pictures
from recsys_tf.errors import DataError
from recsys_tf.features import PictureAutoencoder, PictureEncoder, SentenceEncoder
from recsys_tf.features.cnn import LITE0_INSTALL, efficientnet_lite0, efficientnet_lite0_weights
from recsys_tf.features.text import MINILM_INSTALL
from recsys_tf.features.torch_weights import read_state_dict


def _fake_torch(monkeypatch):
    """Just enough of ``torch`` for pickle to write what torch.save writes."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = "FloatStorage", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return FloatStorage, _rebuild_tensor_v2


def _write_pth(path, tensors, monkeypatch, layout="legacy"):
    storage_cls, rebuild = _fake_torch(monkeypatch)

    class Ref:
        def __init__(self, key, n):
            self.key, self.n = key, n

    class Tensor:
        def __init__(self, key, a):
            self.key, self.a = key, a

        def __reduce__(self):
            strides = tuple(s // 4 for s in self.a.strides)
            return rebuild, (Ref(self.key, self.a.size), 0, self.a.shape, strides, False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", storage_cls, obj.key, "cpu", obj.n) if isinstance(obj, Ref) else None

    arrays = {str(j): np.ascontiguousarray(a, np.float32) for j, a in enumerate(tensors.values())}
    state = collections.OrderedDict((name, Tensor(str(j), a)) for j, (name, a) in enumerate(zip(tensors, arrays.values())))
    if layout == "legacy":
        with open(path, "wb") as f:
            for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
                pickle.dump(header, f, protocol=2)
            Pickler(f, protocol=2).dump(state)
            pickle.dump(list(arrays), f, protocol=2)
            for a in arrays.values():
                f.write(np.int64(a.size).tobytes() + a.tobytes())
    else:
        import io

        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(state)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", buf.getvalue())
            for key, a in arrays.items():
                z.writestr(f"archive/data/{key}", a.tobytes())


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_state_dict_reader_round_trips_without_torch(tmp_path, monkeypatch, layout):
    rng = np.random.default_rng(0)
    tensors = {"conv.weight": rng.normal(size=(4, 3, 3, 3)), "bn.bias": rng.normal(size=4), "fc.weight": rng.normal(size=(2, 5)).T}
    _write_pth(tmp_path / "w.pth", tensors, monkeypatch, layout)
    monkeypatch.delitem(sys.modules, "torch")  # reading needs no torch
    state = read_state_dict(tmp_path / "w.pth")
    assert list(state) == list(tensors)
    for k, a in tensors.items():
        assert state[k].dtype == np.float32 and np.array_equal(state[k], a.astype(np.float32))


def test_state_dict_reader_rejects_bad_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a PyTorch checkpoint"):
        read_state_dict(tmp_path / "junk.pth")
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f), pickle.dump(1001, f), pickle.dump({}, f)
        f.write(b"cos\nsystem\n(S'echo owned'\ntR.")  # a pickle that would run a command
    with pytest.raises(DataError, match="refusing"):
        read_state_dict(tmp_path / "evil.pth")
    with pytest.raises(DataError, match="no weight file"):
        read_state_dict(tmp_path / "missing.pth")


def _three_products():
    import pandas as pd

    cat = pd.DataFrame({"category": ["Mugs", "Mugs", "Lamps"], "colour": ["red", "red", "blue"], "style": ["classic", "retro", "classic"]})
    return render_pictures(cat.assign(item_id=range(3)))


def test_efficientnet_lite0_architecture_matches_the_weights_layout():
    model = efficientnet_lite0(weights=None, input_size=64, include_top=True)
    convs = [layer for layer in model.layers if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D")]
    assert len(convs) == 2 + 16 * 2 + 15  # stem, head; depthwise + project per block; expand in 15 of 16
    assert model.output_shape == (None, 1000) and model.count_params() == pytest.approx(4.65e6, rel=0.01)


@pytest.mark.skipif(efficientnet_lite0_weights() is None, reason=f"offline weights not installed: {LITE0_INSTALL}")
def test_pretrained_picture_encoder_shapes_determinism_and_similarity():
    pics = _three_products()
    enc = PictureEncoder(batch_size=2)
    z = enc.encode(pics)
    assert z.shape == (3, 1280) and np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    assert np.allclose(z, PictureEncoder(batch_size=4).encode(pics), atol=1e-4)  # batching and padding do not matter
    assert z[0] @ z[1] > z[0] @ z[2]  # two red mugs nearer than a red mug and a blue lamp
    np.testing.assert_array_equal(PictureEncoder(batch_size=2, cache=True).encode(pics), z)  # computed and stored
    again = PictureEncoder(batch_size=2, cache=True)
    np.testing.assert_array_equal(again.encode(pics), z)
    assert again._model is None  # answered from the cache: the network was never built


def test_picture_encoder_names_unknown_backbones():
    with pytest.raises(DataError, match="keras.applications has no"):
        PictureEncoder("NoSuchNet").encode(_three_products())


@pytest.mark.skipif(not SentenceEncoder.available(), reason=f"pretrained text encoder not installed: {MINILM_INSTALL}")
def test_sentence_encoder_shapes_determinism_and_similarity():
    texts = ["red leather ankle boots", "black leather chelsea boots", "ceramic coffee mug", "white porcelain tea cup"]
    enc = SentenceEncoder(batch_size=3)
    z = enc.encode(texts)
    assert z.shape == (4, 384) and np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    assert np.allclose(z, SentenceEncoder(batch_size=8).encode(texts), atol=1e-5)
    # a long text keeps its batch at the full 32 tokens; alone, the short ones run at 8: same vectors
    long = " ".join(["a warm wool scarf with a long fringe"] * 6)
    assert np.allclose(SentenceEncoder(batch_size=8).encode(texts + [long])[:4], z, atol=1e-5)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 2] and sim[2, 3] > sim[2, 0]  # synonyms with no shared word still match
    np.testing.assert_array_equal(SentenceEncoder(batch_size=3, cache=True).encode(texts), z)
    again = SentenceEncoder(batch_size=3, cache=True)
    np.testing.assert_array_equal(again.encode(texts), z)
    assert again._backbone is None  # answered from the cache
    assert SentenceEncoder(batch_size=3, cache=True).encode(texts[:3]).shape == (3, 384)  # other texts: computed


def test_the_embedding_cache_answers_the_same_inputs_and_recomputes_what_it_cannot_trust(tmp_path, monkeypatch):
    from recsys_tf.features.cache import cache_folder, cached, weights_id

    monkeypatch.setenv("RECSYS_TF_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return np.full((2, 3), len(calls), dtype=np.float32)

    first = cached("enc v1", [b"ab", b"c"], 2, compute)
    np.testing.assert_array_equal(cached("enc v1", [b"ab", b"c"], 2, compute), first)
    (stored,) = cache_folder().iterdir()  # one file, no temporary one left
    assert len(calls) == 1 and stored.suffix == ".npy"
    cached("enc v1", [b"a", b"bc"], 2, compute)  # the same bytes cut elsewhere are other inputs
    cached("enc v2", [b"ab", b"c"], 2, compute)  # another encoder, other settings or weights
    assert len(calls) == 3
    bad = {"damaged": lambda f: f.write_bytes(b"not an array"), "wrong rows": lambda f: np.save(f, np.zeros((3, 3), np.float32)),
           "a pickle": lambda f: np.save(f, np.array([{"code": 1}], dtype=object), allow_pickle=True)}  # fmt: skip
    for name, spoil in bad.items():  # computed again, and the file replaced
        spoil(stored)
        n = len(calls)
        out = cached("enc v1", [b"ab", b"c"], 2, compute)
        assert len(calls) == n + 1 and out[0, 0] == n + 1, name
        np.testing.assert_array_equal(np.load(stored, allow_pickle=False), out)
    w = tmp_path / "w.bin"
    w.write_bytes(b"12")
    before = weights_id([w])
    w.write_bytes(b"123")
    assert weights_id([w]) != before  # new weights: new keys


def test_picture_autoencoder_learns_codes_that_group_alike_pictures():
    import pandas as pd

    rows = [(c, col, s) for c in ("Mugs", "Lamps", "Sneakers") for col in ("red", "blue", "green") for s in ("classic", "retro")]
    cat = pd.DataFrame(rows * 2, columns=["category", "colour", "style"]).assign(item_id=range(2 * len(rows)))
    pics = render_pictures(cat)
    ae = PictureAutoencoder(dim=8, epochs=30, batch_size=12, verbose=False).fit(pics)
    z = ae.encode(pics)
    assert z.shape == (len(cat), 8) and ae.history["loss"][-1] < ae.history["loss"][0] / 2
    assert np.allclose(z, PictureAutoencoder(dim=8, epochs=30, batch_size=12, verbose=False).fit(pics).encode(pics), atol=1e-4)
    assert ae.reconstruct(pics[:2]).shape == (2, 32, 32, 3)
    assert np.allclose(ae.encode(pics[:1]), z[:1], atol=1e-5)  # a picture's code does not depend on its batch
    n = len(rows)
    twin = (z[:n] * z[n:]).sum(axis=1)  # each picture and its identical twin
    other = z[:n] @ z[:n].T
    np.fill_diagonal(other, np.nan)
    assert np.nanmean(twin) > np.nanmean(other) + 0.3


def test_keras_applications_weights_are_found_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert not PictureEncoder.available("MobileNetV3Small")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5").write_bytes(b"")
    assert PictureEncoder.available("MobileNetV3Small") and not PictureEncoder.available("ResNet50")
