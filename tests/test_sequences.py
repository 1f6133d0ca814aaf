"""Sequence data and the sequence models (GRU4Rec, SASRec, BERT4Rec): order, causality, masks, losses, API."""

import math

import keras
import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.sequences import leave_one_out, read_candidates, to_sequences
from recsys_tf.errors import DataError
from recsys_tf.models import BERT4Rec, GRU4Rec, Popularity, Recommender, SASRec
from recsys_tf.models.sequential import _gbce_beta, build_sequence_net, sequence_loss


def _chains(n_users=120, n_items=40, length=12, seed=0) -> pd.DataFrame:
    """Each user walks the catalogue in steps of +1 from a random start: the next item is predictable
    from the last one, while every item is about equally popular."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, n_items, n_users)
    steps = np.arange(length)
    items = (start[:, None] + steps[None, :]) % n_items
    return pd.DataFrame({"user_id": np.repeat(np.arange(n_users), length), "item_id": items.ravel() + 100,
                         "timestamp": np.tile(steps, n_users) * 10})  # fmt: skip


# --- data ---------------------------------------------------------------------------------------------
def test_sequences_follow_time_with_ties_in_input_order_and_pad_on_the_left():
    df = pd.DataFrame({"user_id": [2, 1, 1, 1, 2], "item_id": [7, 5, 6, 9, 5], "timestamp": [3, 20, 10, 10, 1]})
    seq = to_sequences(df)
    assert seq.users.tolist() == [1, 2] and seq.item_ids.tolist() == [5, 6, 7, 9]
    raw = seq.item_ids[seq.codes - 1]
    assert raw.tolist() == [6, 9, 5, 5, 7]  # user 1: t=10 (6 then 9, input order), t=20 (5); user 2: 5, 7
    assert seq.padded(4).tolist() == [[0, 2, 4, 1], [0, 0, 1, 3]]
    assert seq.padded(2).tolist() == [[4, 1], [1, 3]]  # truncation keeps the most recent items
    assert seq.padded(3, end=np.array([1, 2])).tolist() == [[0, 0, 2], [0, 1, 3]]


def test_leave_one_out_holds_out_the_last_two_items_and_keeps_short_users_in_training():
    df = pd.DataFrame({"user_id": [1] * 5 + [2] * 2, "item_id": [10, 11, 12, 13, 14, 10, 11], "timestamp": [0, 1, 2, 3, 4, 0, 1]})
    split = leave_one_out(to_sequences(df))
    assert split.test_frame[["user_id", "item_id"]].values.tolist() == [[1, 14]]
    assert split.val_frame[["user_id", "item_id"]].values.tolist() == [[1, 13]]
    assert split.train.lengths.tolist() == [3, 2] and split.n_short == 1
    assert split.train.item_ids[split.train.codes - 1].tolist() == [10, 11, 12, 10, 11]


def test_sequences_refuse_empty_frames_missing_order_and_foreign_items():
    with pytest.raises(DataError, match="empty"):
        to_sequences(pd.DataFrame({"user_id": [], "item_id": [], "timestamp": []}))
    with pytest.raises(DataError, match="timestamp"):
        to_sequences(pd.DataFrame({"user_id": [1], "item_id": [2]}))
    with pytest.raises(DataError, match="outside the catalogue"):
        to_sequences(pd.DataFrame({"user_id": [1], "item_id": [99], "timestamp": [0]}), item_ids=np.array([1, 2]))


def test_the_published_negatives_file_is_read_per_user_and_checked(tmp_path):
    path = tmp_path / "X_sample.txt"
    path.write_text("1 5 6 7\n2 8 9 10\n")
    assert read_candidates(path, np.array([2, 1])).tolist() == [[8, 9, 10], [5, 6, 7]]
    with pytest.raises(DataError, match="no negatives for user"):
        read_candidates(path, np.array([3]))
    path.write_text("1 5 6 7\n2 8\n")
    with pytest.raises(DataError, match="same number of negatives"):
        read_candidates(path, np.array([1]))


# --- networks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["pre-norm", "authors", "post-norm"])
def test_sasrec_is_causal_and_padding_is_masked(layout):
    net = build_sequence_net("sasrec", n_items=30, maxlen=8, dim=16, blocks=2, heads=2, dropout=0.0, seed=0, layout=layout)
    a = np.array([[0, 0, 3, 4, 5, 6, 7, 8]], "int32")
    b = a.copy()
    b[0, 5:] = [20, 21, 22]  # items after position 4 change
    ha, hb = keras.ops.convert_to_numpy(net(a)), keras.ops.convert_to_numpy(net(b))
    assert np.allclose(ha[0, :5], hb[0, :5], atol=1e-5) and not np.allclose(ha[0, 5:], hb[0, 5:], atol=1e-3)
    table = net.items.embeddings
    table.assign(keras.ops.concatenate([keras.ops.ones((1, 16)) * 5.0, table[1:]], 0))  # scramble the padding row
    assert np.allclose(keras.ops.convert_to_numpy(net(a))[0, 2:], ha[0, 2:], atol=1e-5)
    bert = build_sequence_net("bert4rec", n_items=30, maxlen=8, dim=16, blocks=1, heads=1, dropout=0.0, seed=0)
    ba, bb = keras.ops.convert_to_numpy(bert(a)), keras.ops.convert_to_numpy(bert(b))
    assert not np.allclose(ba[0, 2], bb[0, 2], atol=1e-4)  # bidirectional: later items matter


def test_the_authors_layout_is_their_block_by_hand(tmp_path):
    """layout="authors" (kang205/SASRec's model.py): h = LN(x); x' = h + softmax(q k^T / sqrt(d)) v with
    q from h, k and v from x (causal, padding keys masked, no output projection); then
    h' = LN(x'), h' + FF(h'), padding rows zeroed; a final LN."""
    net = build_sequence_net("sasrec", n_items=9, maxlen=5, dim=4, blocks=1, heads=1, dropout=0.0, seed=2, layout="authors")
    seq = np.array([[0, 0, 3, 7, 1]], "int32")
    blk = net.blocks[0]
    dense = lambda layer, x: x @ keras.ops.convert_to_numpy(layer.kernel) + keras.ops.convert_to_numpy(layer.bias)  # noqa: E731
    ln = lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)  # gamma 1, beta 0 when built
    keep = (seq[0] != 0)[:, None]
    x = (keras.ops.convert_to_numpy(net.items.embeddings)[seq[0]] * 2.0 + keras.ops.convert_to_numpy(net.positions.embeddings)) * keep
    h = ln(x)
    q, kv = dense(blk.q, h), dense(blk.kv, x)
    k, v = kv[:, :4], kv[:, 4:]
    logits = np.where(np.tril(np.ones((5, 5), bool)) & keep.T, q @ k.T / 2.0, -1e9)
    att = np.exp(logits - logits.max(-1, keepdims=True))
    x = h + (att / att.sum(-1, keepdims=True)) @ v
    h = ln(x)
    x = (h + dense(blk.ff2, np.maximum(dense(blk.ff1, h), 0))) * keep
    want = ln(x)
    got = keras.ops.convert_to_numpy(net(seq))[0]
    assert np.allclose(got[2:], want[2:], atol=1e-5) and not hasattr(blk, "proj")
    # Glorot-uniform embeddings, as the authors' tf.get_variable: positions within sqrt(6 / (5 + 4)) = 0.82
    positions = np.abs(keras.ops.convert_to_numpy(net.positions.embeddings))
    assert 0.3 < positions.max() <= math.sqrt(6 / 9)


def test_the_post_norm_layout_is_s3rec_s_encoder_by_hand():
    """layout="post-norm" (aHuiWang/CIKM2020-S3Rec's modules.py): e = LN(item + position);
    x' = LN(x + W_o softmax(q k^T / sqrt(d)) v) (causal, padding keys masked); LN(x' + W2 GELU(W1 x'))
    with W1 4x wide; no final LN; N(0, 0.02) weights."""
    net = build_sequence_net("sasrec", n_items=9, maxlen=5, dim=4, blocks=1, heads=1, dropout=0.0, seed=2, layout="post-norm")
    seq = np.array([[0, 0, 3, 7, 1]], "int32")
    blk = net.blocks[0]
    dense = lambda layer, x: x @ keras.ops.convert_to_numpy(layer.kernel) + keras.ops.convert_to_numpy(layer.bias)  # noqa: E731
    ln = lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)  # gamma 1, beta 0 when built
    gelu = lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))  # noqa: E731
    x = ln(keras.ops.convert_to_numpy(net.items.embeddings)[seq[0]] + keras.ops.convert_to_numpy(net.positions.embeddings))
    q, k, v = np.split(dense(blk.qkv, x), 3, axis=-1)
    logits = np.where(np.tril(np.ones((5, 5), bool)) & (seq != 0), q @ k.T / 2.0, -1e9)
    att = np.exp(logits - logits.max(-1, keepdims=True))
    x = ln(x + dense(blk.proj, (att / att.sum(-1, keepdims=True)) @ v))
    want = ln(x + dense(blk.ff2, gelu(dense(blk.ff1, x))))
    got = keras.ops.convert_to_numpy(net(seq))[0]
    assert np.allclose(got[2:], want[2:], atol=1e-5) and blk.ff1.kernel.shape == (4, 16)
    weights = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in (net.items.embeddings, blk.qkv.kernel, blk.ff1.kernel)])
    assert abs(weights.std() - 0.02) < 0.004 and np.abs(weights).max() > 0.04  # normal, not truncated at 2 sd


def _tiny_net():
    return build_sequence_net("sasrec", n_items=6, maxlen=3, dim=4, blocks=1, heads=1, dropout=0.0, seed=1)


def _by_hand(net, packed):
    h = keras.ops.convert_to_numpy(net(packed[:, 0]))
    table = keras.ops.convert_to_numpy(net.items.embeddings)
    return h, table, packed[:, 1] != 0


def test_bce_and_gbce_losses_equal_the_formula_by_hand():
    net = _tiny_net()
    packed = np.array([[[0, 1, 2], [0, 2, 3], [0, 5, 6], [0, 4, 4]], [[1, 3, 4], [3, 4, 5], [6, 6, 1], [2, 2, 2]]], "int32")
    h, table, valid = _by_hand(net, packed)
    log_sig = lambda x: -np.log1p(np.exp(-x))  # noqa: E731
    pos = np.einsum("bld,bld->bl", h, table[packed[:, 1]])
    negs = np.einsum("bld,bnld->bnl", h, table[packed[:, 2:]])
    beta = _gbce_beta(2, 6, 0.75)
    assert beta == pytest.approx((2 / 5) * (0.75 * (1 - 5 / 2) + 5 / 2))
    want = (-beta * log_sig(pos) - log_sig(-negs).sum(1))[valid].mean()
    got = float(keras.ops.mean(sequence_loss(net, packed, "gbce", beta)))
    assert got == pytest.approx(want, rel=1e-4)
    want_bce = (-log_sig(pos) - log_sig(-negs[:, 0]))[valid].mean()
    assert float(keras.ops.mean(sequence_loss(net, packed[:, :3], "bce", 1.0))) == pytest.approx(want_bce, rel=1e-4)


def test_full_cross_entropy_equals_the_softmax_over_all_items_by_hand():
    net = _tiny_net()
    packed = np.array([[[0, 1, 2], [0, 2, 3]], [[4, 5, 6], [5, 6, 1]]], "int32")
    h, table, valid = _by_hand(net, packed)
    logits = h @ table[1:7].T
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -np.take_along_axis(logp, np.maximum(packed[:, 1] - 1, 0)[..., None], -1)[..., 0][valid].mean()
    assert float(keras.ops.mean(sequence_loss(net, packed, "ce"))) == pytest.approx(want, rel=1e-4)
    # the softmax at the 5 target positions only (what training does when most of a batch is padding)
    assert float(keras.ops.mean(sequence_loss(net, packed, "ce", positions=5))) == pytest.approx(want, rel=1e-4)
    packed[1, 1, 0] = 0  # one target fewer than slots: the empty slot adds nothing
    h, table, valid = _by_hand(net, packed)
    logp = h @ table[1:7].T
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    want = -np.take_along_axis(logp, np.maximum(packed[:, 1] - 1, 0)[..., None], -1)[..., 0][valid].mean()
    assert float(keras.ops.mean(sequence_loss(net, packed, "ce", positions=5))) == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("kind,loss,n_neg,layout", [("sasrec", "bce", 1, "pre-norm"), ("sasrec", "gbce", 3, "pre-norm"),
                                                    ("sasrec", "ce", 0, "pre-norm"), ("bert4rec", "ce", 0, "pre-norm"),
                                                    ("sasrec", "bce", 1, "authors"), ("sasrec", "bce", 1, "post-norm")])  # fmt: skip
def test_the_network_on_the_items_only_gives_the_full_width_loss_and_gradients(kind, loss, n_neg, layout):
    """``tokens=``: the dense layers run on the batch's items, not on its padding (training's fast
    path); loss and gradients are those of the full (B, L) computation, to float rounding."""
    import tensorflow as tf

    from recsys_tf.models.sequential import _Trainer

    rng = np.random.default_rng(0)
    net = build_sequence_net(kind, 50, 12, 16, 2, 2, 0.0, 0, layout)
    lens = rng.integers(1, 13, 8)
    real = np.arange(12)[None, :] >= 12 - lens[:, None]  # left padding
    seq = np.where(real, rng.integers(1, 51, (8, 12)), 0)
    target = np.where(real & (rng.random((8, 12)) < (0.4 if kind == "bert4rec" else 2)), rng.integers(1, 51, (8, 12)), 0)
    negs = np.where(real[:, None], rng.integers(1, 51, (8, n_neg, 12)), 0)
    packed = tf.constant(np.concatenate([seq[:, None], target[:, None], negs], 1).astype(np.int32))
    positions = int((target > 0).sum()) + 3 if loss == "ce" else None

    def loss_and_grads(**kw):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(sequence_loss(net, packed, loss, 1.0, **kw))
        return float(value), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(value, net.trainable_variables)]

    full, full_grads = loss_and_grads(positions=positions)
    for tokens in (int(lens.sum()), int(lens.sum()) + 7):  # exactly the items, and spare slots
        packed_loss, grads = loss_and_grads(positions=positions, tokens=tokens)
        assert packed_loss == pytest.approx(full, abs=1e-6)
        assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(grads, full_grads))
    # a batch whose size the trace does not know (TensorFlow's epoch loop), bounded by batch_size
    unknown = tf.function(lambda p: sequence_loss(net, p, loss, 1.0, positions, int(lens.sum()), batch_size=8),
                          input_signature=[tf.TensorSpec([None, *packed.shape[1:]], tf.int32)])
    assert float(tf.reduce_mean(unknown(packed))) == pytest.approx(full, abs=1e-6)
    trainer = _Trainer(net, loss, 1.0, 1e-3, batch_size=4)
    trainer._fit_sizes(packed.numpy())  # the bound: the fullest batch of 4 rows, +25%, in steps of 256
    assert trainer.tokens == 256 and (trainer.positions == 256) == (loss == "ce")


def test_tensorflow_s_epoch_loop_runs_the_network_on_the_items_only(monkeypatch):
    """Its batches have a size the trace does not know (one trace serves the whole batches and the
    last); the padding must still be skipped there (from 2026-11-30 to 2026-12-01 it was not: an
    epoch of Sports took 20 s instead of 12)."""
    from recsys_tf.models.sequential import _Trainer

    net = build_sequence_net("sasrec", 50, 20, 16, 1, 1, 0.0, 0)
    seen, packed_fn = [], net.packed
    monkeypatch.setattr(net, "packed", lambda seq, tokens, training=None: seen.append(tokens) or packed_fn(seq, tokens, training))
    rng = np.random.default_rng(0)
    real = np.arange(20)[None, :] >= 20 - rng.integers(2, 6, 100)[:, None]
    packed = np.where(real[:, None], rng.integers(1, 51, (100, 3, 20)), 0).astype(np.int32)
    trainer = _Trainer(net, "bce", 1.0, 1e-3, batch_size=32)
    assert np.isfinite(trainer.run_epoch(packed)) and trainer.fast is not None
    assert seen == [256]  # traced once, on the packed path


def test_bert4rec_masks_the_share_it_is_told_and_every_row_at_least_once():
    m = BERT4Rec(maxlen=20, mask_prob=0.3, epochs=0, verbose=False).fit(_chains(n_users=400, length=15))
    packed = m._epoch_samples(np.random.default_rng(0))
    real = (packed[:, 0] != 0)
    masked = packed[:, 0] == m.n_items + 1
    assert masked.sum() / real.sum() == pytest.approx(0.3, abs=0.02)
    assert masked.any(1).all() and (packed[:, 1][masked] > 0).all() and (packed[:, 1][~masked] == 0).all()


# --- models -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chain_split():
    df = _chains()
    split = leave_one_out(to_sequences(df))
    pos = df.groupby("user_id").cumcount()
    return df[pos < 10], split


@pytest.fixture(scope="module")
def sasrec(chain_split):
    train, _ = chain_split
    return SASRec(maxlen=10, dim=32, epochs=25, batch_size=32, learning_rate=0.005, dropout=0.1, verbose=False).fit(train)


def test_sasrec_and_gru4rec_beat_popularity_on_held_out_next_items(chain_split, sasrec):
    train, split = chain_split
    pop = Popularity().fit(train).evaluate(split.test_frame, exclude=split.val_frame)["hit_rate@10"]
    ours = sasrec.evaluate(split.test_frame, history=split.val_frame)["hit_rate@10"]
    gru = GRU4Rec(maxlen=10, dim=32, epochs=25, batch_size=32, learning_rate=0.005, dropout=0.0, verbose=False).fit(train)
    gru_hr = gru.evaluate(split.test_frame, history=split.val_frame)["hit_rate@10"]
    assert ours > max(0.8, pop + 0.4) and gru_hr > pop + 0.2


def test_recommend_next_for_a_session_never_seen_in_training(sasrec):
    items, scores = sasrec.recommend_next([108, 109, 110, 111, 112], k=3)
    assert items[0] == 113 and len(items) == 3 and np.all(np.diff(scores) <= 0)
    assert not set(items) & {108, 109, 110, 111, 112}
    assert 113 in sasrec.recommend_next([110, 111, 112], k=3)[0]  # shorter than any training history
    long = list(range(100, 140)) + [105, 106, 107]  # 43 items > maxlen 10: the last 10 are used
    assert np.array_equal(sasrec.recommend_next(long, k=5, exclude_seen=False)[0],
                          sasrec.recommend_next(long[-10:], k=5, exclude_seen=False)[0])  # fmt: skip
    with pytest.raises(DataError, match="empty history"):
        sasrec.recommend_next([], k=3)
    with pytest.raises(DataError, match="unknown to the model, e.g. \\[999\\]"):
        sasrec.recommend_next([110, 999], k=3)
    assert np.array_equal(sasrec.recommend_next([108, 109, 999], k=3, unknown="ignore")[0], sasrec.recommend_next([108, 109], k=3)[0])
    with pytest.raises(ValueError, match="k must be"):
        sasrec.recommend_next([110], k=0)


def test_sampled_and_full_ranking_see_the_same_history(chain_split, sasrec):
    from recsys_tf.evaluation import evaluate_sampled

    _, split = chain_split
    test = split.test_frame
    rng = np.random.default_rng(0)
    cand = np.column_stack([test.item_id.to_numpy(), 100 + rng.integers(0, 40, (len(test), 20))])
    with sasrec.extended(split.val_frame):
        sampled = evaluate_sampled(sasrec, test, cand)["hit_rate@10"]
    full = sasrec.evaluate(test, history=split.val_frame)["hit_rate@10"]
    assert sampled >= full - 1e-9  # fewer competitors can only help


def test_ranking_on_the_device_gives_the_host_path_lists(sasrec):
    codes = np.arange(sasrec.n_users)  # 120 users: the device path (32 or more)
    on_device = sasrec._top_k_codes(codes, 10, exclude_seen=True)
    on_host = Recommender._top_k_codes(sasrec, codes, 10, exclude_seen=True)
    assert np.array_equal(on_device[0], on_host[0]) and np.allclose(on_device[1], on_host[1], atol=1e-5)
    assert (on_device[0] == -1).sum() == 0 and not np.isin(on_device[0][0], sasrec.sequences_.codes[: sasrec.sequences_.lengths[0]] - 1).any()


@pytest.mark.parametrize("cls", [SASRec, BERT4Rec])
def test_ranking_without_the_padding_columns_gives_the_full_width_lists(cls):
    """The device path sorts users by history length and drops each batch's all-padding columns:
    positions count from the right, so states, lists and scores are those of the full-width input."""
    from recsys_tf.models.sequential import _trim_padding

    df = _chains(n_users=150, length=14)
    df = df[df.groupby("user_id").cumcount() < 2 + df.user_id % 13]  # 2..14 items a user
    model = cls(maxlen=24, dim=16, epochs=2, batch_size=256, verbose=False).fit(df)  # one batch: Keras fit, no compiled loop to trace
    x = model._histories(np.arange(model.n_users))
    short = x[np.count_nonzero(x, axis=1) <= 7]
    assert _trim_padding(short).shape[1] == 8 and _trim_padding(x).shape[1] == 16  # <= 7 and 14 items, rounded up to 8s
    full, trimmed = model.net_(short, training=False)[:, -1], model.net_(_trim_padding(short), training=False)[:, -1]
    assert np.allclose(keras.ops.convert_to_numpy(full), keras.ops.convert_to_numpy(trimmed), atol=1e-5)
    codes = np.random.default_rng(0).permutation(model.n_users)  # any order in, the same order out
    on_device = model._top_k_codes(codes, 10, exclude_seen=True, batch_size=16)
    on_host = Recommender._top_k_codes(model, codes, 10, exclude_seen=True)
    assert np.array_equal(on_device[0], on_host[0]) and np.allclose(on_device[1], on_host[1], atol=1e-5)


def test_save_and_load_round_trip(chain_split, sasrec, tmp_path):
    sasrec.save(tmp_path / "s")
    again = Recommender.load(tmp_path / "s")
    assert type(again) is SASRec and again.maxlen == 10 and again.layout == "pre-norm"
    assert np.allclose(again.recommend_next([110, 111], k=5)[1], sasrec.recommend_next([110, 111], k=5)[1], atol=1e-5)
    authors = SASRec(maxlen=10, dim=8, epochs=1, layout="authors", beta_2=0.98, verbose=False).fit(chain_split[0])
    authors.save(tmp_path / "a")
    back = Recommender.load(tmp_path / "a")
    assert (back.layout, back.beta_2) == ("authors", 0.98)
    assert np.allclose(back.recommend_next([110, 111], k=5)[1], authors.recommend_next([110, 111], k=5)[1], atol=1e-5)
    assert np.array_equal(again.recommend(5, k=5)[0], sasrec.recommend(5, k=5)[0])
    (tmp_path / "s" / "sequence_codes.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(DataError):
        Recommender.load(tmp_path / "s")


def test_attention_map_of_one_session_is_causal_and_sums_to_one(sasrec):
    maps = sasrec.attention_maps([110, 111, 112, 113])
    assert len(maps) == 2 and maps[0].shape == (1, 10, 10)
    w = maps[-1][0][-4:]  # the rows of the 4 items (padding rows attend to nothing that is used)
    assert np.allclose(w.sum(-1), 1.0, atol=1e-5) and np.allclose(w[:, :6], 0.0)  # no weight on padding
    assert np.allclose(np.triu(w[:, -4:], 1), 0.0, atol=1e-6)  # nor on later items


def test_sequence_models_refuse_bad_settings_and_unordered_data():
    with pytest.raises(ValueError, match="loss"):
        SASRec(loss="hinge")
    with pytest.raises(ValueError, match="multiple of heads"):
        SASRec(dim=10, heads=3)
    with pytest.raises(ValueError, match="layout must be one of 'pre-norm', 'authors', 'post-norm'"):
        SASRec(layout="post-norm-ish")
    with pytest.raises(DataError, match="timestamp"):
        SASRec(epochs=1, verbose=False).fit(pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2]}))
    assert math.isfinite(_gbce_beta(1, 2, 0.0))


class _Stop(Exception):
    pass


@pytest.mark.parametrize("cls, loss", [(SASRec, "bce"), (BERT4Rec, "ce")])  # negatives drawn; masks drawn and the softmax resized
def test_a_stopped_fit_resumes_from_its_checkpoint_to_the_same_weights(chain_split, tmp_path, cls, loss):
    train, split = chain_split
    kw = dict(maxlen=10, dim=8, epochs=4, batch_size=32, learning_rate=0.005, dropout=0.3, patience=10, verbose=False, loss=loss)
    straight = cls(**kw).fit(train, val=split.val_frame)

    def stop_in_epoch_3(model):
        if len(model.history_) == 2:
            raise _Stop  # as a killed process: two epochs are on disk
        return {}

    ckpt = tmp_path / "fit.npz"
    with pytest.raises(_Stop):
        cls(**kw, epoch_callback=stop_in_epoch_3).fit(train, val=split.val_frame, checkpoint=ckpt)
    assert ckpt.exists() and not list(tmp_path.glob("*.tmp*"))
    resumed = cls(**kw).fit(train, val=split.val_frame, checkpoint=ckpt)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(resumed.history_) == drop(straight.history_) and resumed.best_epoch_ == straight.best_epoch_
    for a, b in zip(resumed.net_.get_weights(), straight.net_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.fit_seconds_ >= sum(r["seconds"] for r in resumed.history_)

    calls = []
    again = cls(**kw, epoch_callback=lambda m: calls.append(1) or {}).fit(train, val=split.val_frame, checkpoint=ckpt)
    assert not calls and len(again.history_) == 4  # finished: the same call trains nothing
    np.testing.assert_array_equal(again.item_vectors, straight.item_vectors)


def test_adam_defaults_to_keras_beta_2_and_the_trainer_uses_the_model_s():
    """From 2026-11-30 to 2026-12-01 the default was 0.9 while the docstring called it Keras' default (0.999)."""
    from recsys_tf.models.sequential import _Trainer

    keras_default = keras.optimizers.Adam().beta_2
    assert keras_default == 0.999
    for cls in (GRU4Rec, SASRec, BERT4Rec):
        assert cls().beta_2 == keras_default
    net = build_sequence_net("sasrec", n_items=20, maxlen=6, dim=8, blocks=1, heads=1, dropout=0.0, seed=0)
    assert _Trainer(net, "bce", 1.0, 1e-3, 16).optimizer.beta_2 == keras_default
    assert _Trainer(net, "bce", 1.0, 1e-3, 16, beta_2=0.98).optimizer.beta_2 == 0.98


def test_a_checkpoint_of_another_fit_or_a_damaged_one_is_refused(chain_split, tmp_path):
    train, split = chain_split
    kw = dict(maxlen=10, dim=8, epochs=1, batch_size=32, verbose=False)
    ckpt = tmp_path / "fit.npz"
    SASRec(**kw).fit(train, val=split.val_frame, checkpoint=ckpt)
    with pytest.raises(DataError, match="another fit.*delete it"):
        SASRec(**{**kw, "dim": 16}).fit(train, val=split.val_frame, checkpoint=ckpt)
    with pytest.raises(DataError, match="another fit"):
        SASRec(**kw).fit(train.iloc[:-1], val=split.val_frame, checkpoint=ckpt)  # other data
    for later in ({"layout": "authors"}, {"beta_2": 0.98}, {"beta_2": 0.9}):  # settings added later count when not at their default
        with pytest.raises(DataError, match="another fit"):
            SASRec(**kw, **later).fit(train, val=split.val_frame, checkpoint=ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(DataError, match="damaged checkpoint.*delete it"):
        SASRec(**kw).fit(train, val=split.val_frame, checkpoint=ckpt)
