"""A simulated e-commerce shop: the kit's embedded default data (no download, any machine).

``make_shop(size="small", seed=0)`` draws a catalog, shoppers with several simultaneous needs,
and a session event log (view -> click -> cart -> purchase, some 1-5 ratings) over several weeks,
with popularity drift, new arrivals and realistic dirt (duplicate events, missing values,
malformed rows, bots). The ground truth -- each shopper's needs and true utility for every item --
is kept, so notebooks can show what a perfect recommender would do.

Generative model, per shopper ``u`` with needs ``n = 1..N_u`` (category, style, price level):

    U(u, n, j) = 3.0 * [cat_j = cat_n] + 1.0 * [dept_j = dept_n] + 1.2 * [style_j = style_n]
                 + 0.5 * [colour_j in favourites_u] - s_u * (log price_j - log p_n)^2 + 0.5 * quality_j

A session serves one need (drawn by need weight); each viewed item is drawn with probability
proportional to ``exp(beta * U(u, n, j)) * pop_j(t)`` where ``pop_j(t)`` carries launch dates
and a per-item popularity trend. Clicks, carts and purchases follow logistic functions of U.
The true utility of an item for a shopper is ``max_n U(u, n, j)``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from recsys_tf.data import shop_catalog as sc
from recsys_tf.data.schema import Dataset

Size = Literal["tiny", "small", "large"]
START = 1_767_571_200  # 2026-01-05 00:00:00 UTC, a Monday
DAY = 86_400
# Share of sessions starting at each hour of the day: quiet nights, a lunch bump, an evening peak.
WEEKDAY_PROFILE = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.35, 1.3])  # Monday..Sunday: weekends busier
HOUR_PROFILE = np.array([2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 6, 7, 9, 11, 12, 11, 8, 4], float)


@dataclass(frozen=True)
class ShopConfig:
    """Knobs of the simulation. ``SIZES`` holds the three presets."""

    n_users: int = 3_000
    n_items: int = 1_500
    weeks: int = 8
    sessions_per_week: float = 0.9
    views_per_session: float = 4.0
    beta: float = 1.6  # how sharply shoppers follow their utility
    bot_share: float = 0.01
    duplicate_share: float = 0.02
    missing_share: float = 0.005
    malformed_share: float = 0.005
    rating_share: float = 0.35  # share of purchases that get a 1-5 rating
    user_chunk: int = 1_000  # users sampled at once (bounds memory on the large preset)


SIZES: dict[str, ShopConfig] = {
    "tiny": ShopConfig(n_users=300, n_items=200, weeks=4, sessions_per_week=1.2),
    "small": ShopConfig(n_users=3_000, n_items=1_500, weeks=8),
    "large": ShopConfig(n_users=100_000, n_items=20_000, weeks=12, sessions_per_week=1.5, user_chunk=500),
}
EVENT_TYPES = ("view", "click", "cart", "purchase")
_DEPT_OF_LEAF = np.array([list(sc.CATEGORY_TREE).index(d) for d, _ in sc.LEAVES])  # department code of each leaf category


@dataclass
class Shop:
    """The generated shop. ``events`` is the raw (dirty) log; clean it with :mod:`recsys_tf.data.cleaning`."""

    config: ShopConfig
    seed: int
    catalog: pd.DataFrame
    users: pd.DataFrame
    needs: pd.DataFrame
    events: pd.DataFrame
    _need_arrays: dict = field(default_factory=dict, repr=False)
    _clean_catalog: pd.DataFrame | None = field(default=None, repr=False)  # ground truth: before catalog dirt

    def __repr__(self) -> str:
        return (
            f"Shop(seed={self.seed}, {len(self.users):,} users, {len(self.catalog):,} items, "
            f"{len(self.events):,} raw events over {self.config.weeks} weeks)"
        )

    @property
    def items(self) -> pd.DataFrame:
        """The catalog (alias, so a Shop reads like a :class:`Dataset`)."""
        return self.catalog

    def pictures(self, item_ids: np.ndarray | list[int] | None = None, size: int = 64) -> np.ndarray:
        """Product pictures (``n x size x size x 3`` uint8) rendered from category, colour and style."""
        return sc.render_pictures(self.catalog, None if item_ids is None else np.asarray(item_ids), size)

    def true_utility(self, user_ids: np.ndarray | list[int], item_ids: np.ndarray | None = None) -> np.ndarray:
        """Ground-truth utility ``max_n U(u, n, j)`` (users x items): what a perfect model would rank by."""
        users = np.asarray(user_ids)
        items = self.catalog["item_id"].to_numpy() if item_ids is None else np.asarray(item_ids)
        util = _need_utility(self._need_arrays, self._clean_catalog, items, users)
        return util.max(axis=1)

    def pair_utility(self, user_ids: np.ndarray | list[int], item_ids: np.ndarray | list[int]) -> np.ndarray:
        """Ground-truth utility of each (user, item) pair, e.g. of logged impressions: a ceiling for
        any model that scores them."""
        users, u_pos = np.unique(np.asarray(user_ids), return_inverse=True)
        items, i_pos = np.unique(np.asarray(item_ids), return_inverse=True)
        return self.true_utility(users, items)[u_pos, i_pos]

    def ideal_ranking(self, user_ids: np.ndarray | list[int], k: int = 10) -> np.ndarray:
        """The top-``k`` item ids per user by true utility (the oracle recommender)."""
        util = self.true_utility(user_ids)
        top = np.argpartition(-util, min(k, util.shape[1] - 1), axis=1)[:, :k]
        order = np.take_along_axis(util, top, axis=1).argsort(axis=1)[:, ::-1]
        return self.catalog["item_id"].to_numpy()[np.take_along_axis(top, order, axis=1)]

    def to_dataset(self, events: pd.DataFrame) -> Dataset:
        """Wrap (cleaned) events with the catalog and shopper attributes as a :class:`Dataset`."""
        items = self.catalog.drop(columns=["quality", "trend"])  # latent: not observable
        items = items.assign(categories=[[d, c] for d, c in zip(items["department"], items["category"])])
        users = self.users.drop(columns=["is_bot"])
        return Dataset(f"shop-{self.seed}", events, items, users)


def _user_arrays(cfg: ShopConfig, catalog: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    n = cfg.n_users
    n_needs = 1 + rng.binomial(3, 0.4, n)
    leaf = _item_arrays(catalog)["leaf"]
    leaf_pop = np.bincount(leaf, minlength=len(sc.LEAVES)) + 1.0
    owner = np.repeat(np.arange(n), n_needs)
    m = len(owner)
    need_leaf = rng.choice(len(sc.LEAVES), size=m, p=leaf_pop / leaf_pop.sum())
    # Most shoppers have a signature style they carry across needs; the rest mix styles.
    signature = rng.integers(0, len(sc.STYLES), n)
    keeps_style = rng.random(n) < 0.6
    need_style = np.where(keeps_style[owner] & (rng.random(m) < 0.8), signature[owner], rng.integers(0, len(sc.STYLES), m))
    budget = rng.normal(0.0, 0.45, n)  # log budget level relative to the category's typical price
    leaf_price = np.array([sc.CATEGORY_TREE[d][lf][0] for d, lf in sc.LEAVES])
    need_price = leaf_price[need_leaf] * np.exp(budget[owner] + rng.normal(0.0, 0.2, m))
    weight = rng.gamma(1.0, 1.0, m)
    weight /= np.bincount(owner, weights=weight)[owner]
    sensitivity = rng.gamma(2.0, 0.6, n)
    favourites = np.stack([rng.permutation(len(sc.COLOURS))[:2] for _ in range(n)]) if n else np.zeros((0, 2), int)
    activity = rng.lognormal(0.0, 0.7, n)
    is_bot = np.zeros(n, dtype=bool)
    n_bots = max(1, int(round(cfg.bot_share * n))) if cfg.bot_share > 0 else 0
    is_bot[rng.choice(n, size=n_bots, replace=False)] = True
    colour_names = np.array(list(sc.COLOURS))
    users = pd.DataFrame({
        "user_id": np.arange(n, dtype=np.int64),
        "n_needs": n_needs,
        "price_sensitivity": sensitivity.astype(np.float32),
        "budget_level": np.exp(budget).astype(np.float32),
        "activity": activity.astype(np.float32),
        "favourite_colours": [list(colour_names[f]) for f in favourites],
        "is_bot": is_bot,
    })  # fmt: skip
    needs = pd.DataFrame({
        "user_id": owner.astype(np.int64),
        "need": np.concatenate([np.arange(k) for k in n_needs]) if n else np.zeros(0, int),
        "department": np.array([d for d, _ in sc.LEAVES])[need_leaf],
        "category": np.array([lf for _, lf in sc.LEAVES])[need_leaf],
        "style": np.array(list(sc.STYLES))[need_style],
        "price_level": np.round(need_price, 2),
        "weight": weight.astype(np.float32),
    })  # fmt: skip
    arrays = {
        "owner": owner, "leaf": need_leaf, "dept": _DEPT_OF_LEAF[need_leaf], "style": need_style,
        "log_price": np.log(need_price), "weight": weight, "start": np.r_[0, np.cumsum(n_needs)],
        "sensitivity": sensitivity, "favourites": favourites,
    }  # fmt: skip
    return users, needs, arrays


def _item_arrays(catalog: pd.DataFrame) -> dict[str, np.ndarray]:
    leaf = pd.Categorical(catalog["category"], categories=[lf for _, lf in sc.LEAVES]).codes
    style = pd.Categorical(catalog["style"], categories=list(sc.STYLES)).codes
    colour = pd.Categorical(catalog["colour"], categories=list(sc.COLOURS)).codes
    if min(leaf.min(initial=0), style.min(initial=0), colour.min(initial=0)) < 0:
        raise ValueError("the catalog has a category, style or colour the shop does not know")
    return {
        "leaf": leaf, "dept": _DEPT_OF_LEAF[leaf], "style": style, "colour": colour,
        "cell": (leaf.astype(np.int64) * len(sc.STYLES) + style) * len(sc.COLOURS) + colour,  # (leaf, style, colour) in one code
        "log_price": np.log(catalog["price"].to_numpy()), "quality": catalog["quality"].to_numpy(),
    }  # fmt: skip


def _cell_scores(na: dict, rows: np.ndarray) -> np.ndarray:
    """The categorical part of U for need rows ``rows`` and every (leaf, style, colour) cell (float32).

    An item's category, department, style and colour terms depend only on its cell, so U is this small
    table gathered by the items' cells, plus the price and quality terms. The float32 sums run in the
    order of the formula, so the result is bitwise what summing the terms item by item gives.
    """
    f32 = np.float32
    leaves, styles, colours = np.arange(len(sc.LEAVES)), np.arange(len(sc.STYLES)), np.arange(len(sc.COLOURS))
    cat = np.where(na["leaf"][rows, None] == leaves, f32(3.0), f32(0.0))
    cat += np.where(na["dept"][rows, None] == _DEPT_OF_LEAF, f32(1.0), f32(0.0))
    style = np.where(na["style"][rows, None] == styles, f32(1.2), f32(0.0))
    fav = na["favourites"][na["owner"][rows]]
    colour = np.where((fav[:, :1] == colours) | (fav[:, 1:] == colours), f32(0.5), f32(0.0))
    table = (cat[:, :, None] + style[:, None, :])[..., None] + colour[:, None, None, :]
    return table.reshape(len(rows), -1)


def _need_rows_utility(na: dict, it: dict, rows: np.ndarray, item_idx: np.ndarray, out: np.ndarray | None = None,
                       scratch: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """U(u, n, j) for need rows ``rows`` and catalog positions ``item_idx`` (rows x items, float32).

    Built in float32 in place (into ``out``, with ``scratch`` of the same shape, when given): on the
    large preset this matrix is much of the generator's cost.
    """
    f32 = np.float32
    u = np.take(_cell_scores(na, rows), it["cell"][item_idx], axis=1, out=out)
    gap = np.subtract(it["log_price"][None, item_idx].astype(f32), na["log_price"][rows, None].astype(f32), out=scratch)
    np.square(gap, out=gap)
    gap *= na["sensitivity"][na["owner"][rows], None].astype(f32)
    u -= gap
    u += (f32(0.5) * it["quality"][None, item_idx]).astype(f32)
    return u


def _need_utility(na: dict, catalog: pd.DataFrame, items: np.ndarray, users: np.ndarray) -> np.ndarray:
    """Users x max-needs x items utility, -inf where a user has fewer needs."""
    pos = pd.Index(catalog["item_id"]).get_indexer(items)
    if (pos < 0).any():
        raise KeyError(f"unknown item id(s) {items[pos < 0][:5].tolist()} for this shop")
    if len(users) and (users.min() < 0 or users.max() >= len(na["start"]) - 1):
        raise KeyError(f"unknown user id(s): this shop has users 0..{len(na['start']) - 2}")
    it = _item_arrays(catalog)
    starts, counts = na["start"][users], np.diff(na["start"])[users]
    k = int(counts.max()) if len(users) else 1
    out = np.full((len(users), k, len(pos)), -np.inf, dtype=np.float32)
    for n in range(k):  # at most four needs per shopper
        has = counts > n
        out[has, n] = _need_rows_utility(na, it, starts[has] + n, pos)
    return out


_BLOCK = 16  # CDF entries per block of the coarse index


@dataclass
class _Tables:
    """A block of need rows, ready to sample from: ``util`` (rows x items, float32); ``cdf``, each row's
    item CDF of ``exp(beta * U + pop)`` normalised to 1 plus the row's number, raveled, so that all
    rows form one increasing array; ``coarse``, the last entry of every ``_BLOCK`` entries of each row."""

    util: np.ndarray
    cdf: np.ndarray
    coarse: np.ndarray


def _sample_items(tables: _Tables, n_items: int, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one item per event from its row's CDF: the number of CDF entries of the row <= row + u.

    Exactly ``searchsorted(cdf, row + u, "right") - row * n_items``, found in two steps: the coarse index
    (a few MB, cached) gives the block, then the block's ``_BLOCK`` entries are compared at once. A
    search in the whole CDF (hundreds of MB on the large shop) missed the cache at every step.
    """
    keys = row + rng.random(len(row))
    n_blocks = -(-n_items // _BLOCK)
    order = np.argsort(keys)  # sorted keys: numpy's binary search starts from the previous answer
    block = np.empty(len(keys), np.int64)
    block[order] = np.searchsorted(tables.coarse, keys[order], side="right")
    block = np.minimum(block - row * n_blocks, n_blocks - 1)
    first = block * _BLOCK
    pos = first[:, None] + np.arange(_BLOCK)
    inside = pos < n_items
    vals = tables.cdf[row[:, None] * n_items + np.minimum(pos, n_items - 1)]
    return np.minimum(first + ((vals <= keys[:, None]) & inside).sum(axis=1), n_items - 1)


def _need_rows(na: dict, users: np.ndarray) -> np.ndarray:
    """The need rows of ``users``, user by user."""
    counts = np.diff(na["start"])[users]
    return np.repeat(na["start"][users] - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())


class _TableMaker:
    """Builds the :class:`_Tables` of blocks of need rows into two reused sets of buffers.

    No randomness, so it runs in threads (NumPy releases the GIL), two halves of the rows at once,
    while the caller samples the previous block (hence two sets): the same numbers on any number of
    cores. Reusing the buffers matters as much as the threads: a fresh array of hundreds of MB is
    page-faulted in by the kernel, which cost as much as the arithmetic.
    """

    def __init__(self, cfg: ShopConfig, na: dict, it: dict, pop32: np.ndarray, max_rows: int) -> None:
        self.cfg, self.na, self.it, self.pop32 = cfg, na, it, pop32
        n = len(it["cell"])
        self.sets = [(np.empty((max_rows, n), np.float32), np.empty((max_rows, n), np.float64)) for _ in range(2)]
        self.scratch = np.empty((max_rows, n), np.float32)
        self.halves = ThreadPoolExecutor(2)
        self.ends = np.minimum(np.arange(1, -(-n // _BLOCK) + 1) * _BLOCK, n) - 1

    def make(self, rows: np.ndarray, which: int) -> _Tables:
        """The tables of need rows ``rows`` in buffer set ``which`` (0 or 1)."""
        util, cdf = (b[: len(rows)] for b in self.sets[which])
        half = len(rows) // 2
        for f in [self.halves.submit(self._part, rows, util, cdf, 0, half),
                  self.halves.submit(self._part, rows, util, cdf, half, len(rows))]:  # fmt: skip
            f.result()
        return _Tables(util, cdf.reshape(-1), np.ascontiguousarray(cdf[:, self.ends]).reshape(-1))

    def _part(self, rows: np.ndarray, util: np.ndarray, cdf: np.ndarray, lo: int, hi: int) -> None:
        u, logits, c = util[lo:hi], self.scratch[lo:hi], cdf[lo:hi]
        _need_rows_utility(self.na, self.it, rows[lo:hi], np.arange(util.shape[1]), out=u, scratch=logits)
        np.multiply(u, np.float32(self.cfg.beta), out=logits)  # beta * U + pop, then softmax weights
        logits += self.pop32
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        c[...] = logits
        np.cumsum(c, axis=1, out=c)
        c /= c[:, -1:].copy()
        c += np.arange(lo, hi, dtype=np.float64)[:, None]

    def close(self) -> None:
        self.halves.shutdown()


def _simulate_chunk(cfg: ShopConfig, users: np.ndarray, na: dict, it: dict, catalog: pd.DataFrame,
                    tables: _Tables, rng: np.random.Generator, period: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Sessions and funnel events of a block of (non-bot) users. All arrays, no per-event Python.

    ``tables``: the block's need rows, from :meth:`_TableMaker.make`.
    """
    n_items = len(catalog)
    starts, counts = na["start"][users], np.diff(na["start"])[users]
    rows = _need_rows(na, users)
    local = np.full(na["start"][-1], -1)
    local[rows] = np.arange(len(rows))
    util = tables.util

    activity = na["activity"][users]
    n_sess = rng.poisson(cfg.sessions_per_week * cfg.weeks * activity)
    s_user = np.repeat(users, n_sess)
    # The session's need, by the user's need weights.
    w = na["weight"][rows]
    wcdf = np.cumsum(w)
    row_start = local[starts]
    base = np.concatenate([[0.0], wcdf])[row_start]  # cumulative weight before each user's first need
    s_first = np.repeat(row_start, n_sess)
    s_count = np.repeat(counts, n_sess)
    target = np.repeat(base, n_sess) + rng.random(len(s_user))  # user weights sum to one
    s_row = np.clip(np.searchsorted(wcdf, target, side="right"), s_first, s_first + s_count - 1)
    day_weight = WEEKDAY_PROFILE[np.arange(period // DAY) % 7]
    day = rng.choice(period // DAY, size=len(s_user), p=day_weight / day_weight.sum())
    hour = rng.choice(24, size=len(s_user), p=HOUR_PROFILE / HOUR_PROFILE.sum())
    s_time = day * DAY + hour * 3600 + rng.integers(0, 3600, len(s_user))
    n_views = 1 + rng.geometric(1.0 / cfg.views_per_session, len(s_user)) - 1
    v_sess = np.repeat(np.arange(len(s_user)), n_views)
    v_row = s_row[v_sess]
    gaps = 1.0 + rng.exponential(45.0, len(v_sess))
    v_time = s_time[v_sess] + _cumsum_within(gaps, n_views).astype(np.int64)
    # Items: draw, then thin by launch date and popularity trend (rejection, a few vectorized rounds).
    v_item = _sample_items(tables, n_items, v_row, rng)
    launch, trend = catalog["launch_time"].to_numpy(), catalog["trend"].to_numpy()
    for round_ in range(200):
        frac = v_time / period - 0.5
        launched = launch[v_item] <= v_time
        # first rounds thin by the trend as well; later ones only insist on the launch date
        accept_p = np.exp(trend[v_item] * frac - np.abs(trend[v_item]) * 0.5) * launched if round_ < 25 else launched
        redo = rng.random(len(v_item)) >= accept_p
        if not redo.any():
            break
        v_item[redo] = _sample_items(tables, n_items, v_row[redo], rng)
    v_time = np.maximum(v_time, launch[v_item])  # the few draws still before launch move to launch day
    u_ev = util[v_row, v_item]
    price_gap = it["log_price"][v_item] - na["log_price"][rows][v_row]
    sens = na["sensitivity"][na["owner"][rows][v_row]]
    clicked = rng.random(len(v_item)) < _sigmoid(-4.2 + 0.65 * u_ev)
    carted = clicked & (rng.random(len(v_item)) < _sigmoid(-3.0 + 0.35 * u_ev - sens * np.abs(price_gap)))
    bought = carted & (rng.random(len(v_item)) < _sigmoid(-0.6 + 0.15 * u_ev - 1.5 * sens * np.maximum(price_gap, 0)))
    t_click = v_time + rng.integers(3, 40, len(v_item))
    t_cart = t_click + rng.integers(20, 300, len(v_item))
    t_buy = t_cart + rng.integers(60, 900, len(v_item))
    rated = bought & (rng.random(len(v_item)) < cfg.rating_share)
    stars = np.clip(np.round(3.4 + 0.9 * (u_ev - 5.0) + rng.normal(0, 0.7, len(v_item))), 1, 5)
    v_user = s_user[v_sess]
    parts = [(np.ones_like(v_item, bool), 0, v_time), (clicked, 1, t_click), (carted, 2, t_cart), (bought, 3, t_buy)]
    out = {k: [] for k in ("user", "item", "event", "time", "session", "rating")}
    for mask, code, times in parts:
        out["user"].append(v_user[mask])
        out["item"].append(v_item[mask])
        out["event"].append(np.full(mask.sum(), code))
        out["time"].append(times[mask])
        out["session"].append(v_sess[mask])
        out["rating"].append(np.where(rated[mask] & (code == 3), stars[mask], np.nan))
    res = {k: np.concatenate(v) for k, v in out.items()}
    res["n_sessions"] = np.array([len(s_user)])
    return res


def _simulate_blocks(cfg: ShopConfig, blocks: list[np.ndarray], na: dict, it: dict, catalog: pd.DataFrame,
                     pop32: np.ndarray, rng: np.random.Generator, period: int) -> list[dict[str, np.ndarray]]:  # fmt: skip
    """:func:`_simulate_chunk` for every block of users, in order; the next block's tables are built
    (by two threads) while this one is sampled. The buffers (GBs on the large shop) go on return."""
    n_rows = np.diff(na["start"])
    maker = _TableMaker(cfg, na, it, pop32, max((int(n_rows[b].sum()) for b in blocks), default=0))

    def tables(i: int):
        return ahead.submit(maker.make, _need_rows(na, blocks[i]), i % 2)

    chunks = []
    with ThreadPoolExecutor(1) as ahead:
        try:
            pending = tables(0) if blocks else None
            for i, block in enumerate(blocks):
                ready, pending = pending.result(), (tables(i + 1) if i + 1 < len(blocks) else None)
                chunks.append(_simulate_chunk(cfg, block, na, it, catalog, ready, rng, period))
        finally:
            maker.close()
    return chunks


def _cumsum_within(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (groups are consecutive runs of ``lengths``)."""
    total = np.cumsum(values)
    ends = np.cumsum(lengths)
    before = np.concatenate([[0.0], total[ends[:-1] - 1]]) if len(lengths) else np.zeros(0)
    return total - np.repeat(before, lengths) - values  # first event of a session at its start time


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _bot_events(cfg: ShopConfig, bots: np.ndarray, launch: np.ndarray, period: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Crawlers: long bursts of views one to two seconds apart on random (launched) items, never buying."""
    n_ev = rng.integers(300, 1500, len(bots))
    user = np.repeat(bots, n_ev)
    start = np.repeat(rng.integers(0, period - DAY, len(bots)), n_ev)
    time = start + _cumsum_within(rng.integers(1, 3, len(user)).astype(float), n_ev).astype(np.int64)
    by_launch = np.argsort(launch, kind="stable")
    n_live = np.searchsorted(launch[by_launch], time, side="right")  # products on sale at each time
    item = by_launch[(rng.random(len(user)) * n_live).astype(np.int64)]
    event = np.where(rng.random(len(user)) < 0.02, 1, 0)
    return {"user": user, "item": item, "event": event, "time": time,
            "session": np.full(len(user), -1), "rating": np.full(len(user), np.nan)}  # fmt: skip


_MALFORMED = ("View", " click", "add_to_cart", "purchse", "PURCHASE", "viewed")  # event names a tracker got wrong


def _event_frame(cols: dict[str, np.ndarray], rows: np.ndarray, event: np.ndarray, item_na: np.ndarray | None = None,
                 ts_na: np.ndarray | None = None) -> pd.DataFrame:  # fmt: skip
    """The event log of ``rows`` of ``cols``; ``event`` indexes ``EVENT_TYPES + _MALFORMED``; with the NA
    masks, ``item_id`` and ``timestamp`` are nullable integers (as a dirty log needs)."""
    names = np.array(EVENT_TYPES + _MALFORMED, dtype=object)
    item, ts = cols["item"][rows].astype(np.int64), cols["timestamp"][rows]
    return pd.DataFrame({
        "user_id": cols["user"][rows].astype(np.int64),
        "item_id": item if item_na is None else pd.arrays.IntegerArray(item, item_na),
        "event": names[event],
        "timestamp": ts if ts_na is None else pd.arrays.IntegerArray(ts, ts_na),
        "session_id": cols["session"][rows].astype(np.int64),
        "rating": cols["rating"][rows].astype(np.float64),
    })  # fmt: skip


def _dirty_events(cols: dict[str, np.ndarray], order: np.ndarray, cfg: ShopConfig, n_items: int,
                  rng: np.random.Generator) -> pd.DataFrame:  # fmt: skip
    """The log of rows ``order`` of ``cols`` with duplicates, missing values and malformed rows, as
    tracking pipelines produce them, shuffled (logs arrive out of order). On arrays: the pandas
    version of the same steps took a quarter of the large shop's time."""
    n = len(order)
    rows = np.concatenate([order, order[np.flatnonzero(rng.random(n) < cfg.duplicate_share)]])
    n = len(rows)
    item, ts, event = cols["item"][rows].astype(np.int64), cols["timestamp"][rows], cols["event"][rows].astype(np.int64)
    rating = cols["rating"][rows].astype(np.float64)
    miss = rng.random(n)
    item_na = miss < cfg.missing_share
    ts_na = (miss >= cfg.missing_share) & (miss < 1.6 * cfg.missing_share)
    bad = rng.random(n)
    m = cfg.malformed_share
    pick = bad < m
    event[pick] = len(EVENT_TYPES) + rng.integers(0, len(_MALFORMED), pick.sum())
    unknown = (bad >= m) & (bad < 1.4 * m)
    item[unknown] = rng.integers(n_items, n_items + 500, unknown.sum())  # ids not in the catalog
    item_na &= ~unknown
    millis = (bad >= 1.4 * m) & (bad < 1.8 * m) & ~ts_na
    ts[millis] *= 1000  # a client that logged milliseconds
    rated = np.flatnonzero(~np.isnan(rating))
    wrong = rated[rng.random(len(rated)) < 0.03]
    rating[wrong] = rng.choice([0.0, 6.0, -1.0, 10.0], len(wrong))
    shuffled = rng.permutation(n)
    dirty = {"user": cols["user"][rows], "item": item, "timestamp": ts, "session": cols["session"][rows], "rating": rating}
    return _event_frame(dirty, shuffled, event[shuffled], item_na[shuffled], ts_na[shuffled])


def _dirty_catalog(catalog: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    cat = catalog.copy()
    n = len(cat)
    r = rng.random(n)
    cat.loc[r < 0.02, "brand"] = None
    cat.loc[(r >= 0.02) & (r < 0.03), "price"] = np.nan
    outlier = (r >= 0.03) & (r < 0.035)
    cat.loc[outlier, "price"] = cat.loc[outlier, "price"] * 100  # a price typed in cents
    return cat


def make_shop(size: Size | ShopConfig = "small", seed: int = 0, dirty: bool = True) -> Shop:
    """Generate the shop. ``size``: ``"tiny"`` (tests), ``"small"`` (course default) or ``"large"``
    (>= 100k users, >= 10M events), or a :class:`ShopConfig`. The same seed gives identical data.

    ``dirty=False`` skips the dirt (duplicates, missing and malformed values, bots) for a clean log.
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"Unknown shop size {size!r}; choose one of {list(SIZES)} or pass a ShopConfig.")
        cfg = SIZES[size]
    else:
        cfg = size
    if not dirty:
        cfg = replace(cfg, bot_share=0.0, duplicate_share=0.0, missing_share=0.0, malformed_share=0.0)
    rng = np.random.default_rng(seed)
    period = cfg.weeks * 7 * DAY
    catalog = sc.make_catalog(cfg.n_items, rng, period)
    users, needs, na = _user_arrays(cfg, catalog, rng)
    na["activity"] = users["activity"].to_numpy()
    it = _item_arrays(catalog)
    pop_log = 0.6 * catalog["quality"].to_numpy() + rng.normal(0.0, 0.8, cfg.n_items)  # brand buzz, ads...
    humans = users.loc[~users["is_bot"], "user_id"].to_numpy()
    blocks = [humans[i : i + cfg.user_chunk] for i in range(0, len(humans), cfg.user_chunk)]
    chunks = _simulate_blocks(cfg, blocks, na, it, catalog, pop_log.astype(np.float32), rng, period)
    bots = users.loc[users["is_bot"], "user_id"].to_numpy()
    if len(bots):
        chunks.append(_bot_events(cfg, bots, catalog["launch_time"].to_numpy(), period, rng))
    cols = {k: np.concatenate([c[k] for c in chunks]) for k in ("user", "item", "event", "time", "session", "rating")}
    # Session ids were per chunk: make them global (bots get their own session per bot).
    offsets = np.cumsum([0] + [int(c["n_sessions"][0]) if "n_sessions" in c else 0 for c in chunks[:-1]])
    sizes = [len(c["user"]) for c in chunks]
    session = cols["session"] + np.repeat(offsets, sizes)
    is_bot_ev = cols["session"] < 0
    session[is_bot_ev] = session.max(initial=-1) + 1 + cols["user"][is_bot_ev]
    cols["session"], cols["timestamp"] = session, (START + cols["time"]).astype(np.int64)
    # by time, shopper and event name (alphabetical: cart, click, purchase, view), ties in generation order
    name_rank = np.argsort(np.argsort(np.array(EVENT_TYPES)))
    order = np.lexsort((name_rank[cols["event"]], cols["user"], cols["timestamp"]))
    clean_catalog = catalog
    if cfg.duplicate_share or cfg.missing_share or cfg.malformed_share:
        events = _dirty_events(cols, order, cfg, cfg.n_items, rng)
        catalog = _dirty_catalog(catalog, rng)
    else:
        events = _event_frame(cols, order, cols["event"][order])
    catalog = catalog.assign(picture=None)
    return Shop(config=cfg, seed=seed, catalog=catalog, users=users, needs=needs, events=events,
                _need_arrays=na, _clean_catalog=clean_catalog)  # fmt: skip
