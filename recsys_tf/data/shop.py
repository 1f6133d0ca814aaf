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
    dept_of_leaf = np.array([list(sc.CATEGORY_TREE).index(d) for d, _ in sc.LEAVES])
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
        "owner": owner, "leaf": need_leaf, "dept": dept_of_leaf[need_leaf], "style": need_style,
        "log_price": np.log(need_price), "weight": weight, "start": np.r_[0, np.cumsum(n_needs)],
        "sensitivity": sensitivity, "favourites": favourites,
    }  # fmt: skip
    return users, needs, arrays


def _item_arrays(catalog: pd.DataFrame) -> dict[str, np.ndarray]:
    leaf = pd.Categorical(catalog["category"], categories=[lf for _, lf in sc.LEAVES]).codes
    dept_of_leaf = np.array([list(sc.CATEGORY_TREE).index(d) for d, _ in sc.LEAVES])
    return {
        "leaf": leaf, "dept": dept_of_leaf[leaf],
        "style": pd.Categorical(catalog["style"], categories=list(sc.STYLES)).codes,
        "colour": pd.Categorical(catalog["colour"], categories=list(sc.COLOURS)).codes,
        "log_price": np.log(catalog["price"].to_numpy()), "quality": catalog["quality"].to_numpy(),
    }  # fmt: skip


def _need_rows_utility(na: dict, it: dict, rows: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    """U(u, n, j) for need rows ``rows`` and catalog positions ``item_idx`` (rows x items, float32).

    Built in float32 in place: on the large preset this matrix is the generator's main cost.
    """
    owner = na["owner"][rows]
    f32 = np.float32
    u = np.where(na["leaf"][rows, None] == it["leaf"][None, item_idx], f32(3.0), f32(0.0))
    u += np.where(na["dept"][rows, None] == it["dept"][None, item_idx], f32(1.0), f32(0.0))
    u += np.where(na["style"][rows, None] == it["style"][None, item_idx], f32(1.2), f32(0.0))
    fav = na["favourites"][owner]
    colour = it["colour"][None, item_idx]
    u += np.where((fav[:, :1] == colour) | (fav[:, 1:] == colour), f32(0.5), f32(0.0))
    gap = it["log_price"][None, item_idx].astype(f32) - na["log_price"][rows, None].astype(f32)
    np.square(gap, out=gap)
    gap *= na["sensitivity"][owner, None].astype(f32)
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


def _sample_items(flat_cdf: np.ndarray, n_items: int, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one item per event from its row's CDF (rows stacked with offsets: one searchsorted)."""
    idx = np.searchsorted(flat_cdf, row + rng.random(len(row)), side="right")
    return np.minimum(idx - row * n_items, n_items - 1)


def _simulate_chunk(cfg: ShopConfig, users: np.ndarray, na: dict, it: dict, catalog: pd.DataFrame,
                    pop_log: np.ndarray, rng: np.random.Generator, period: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Sessions and funnel events of a block of (non-bot) users. All arrays, no per-event Python."""
    n_items = len(catalog)
    starts, counts = na["start"][users], np.diff(na["start"])[users]
    rows = np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts)])  # need rows of this block
    local = np.full(na["start"][-1], -1)
    local[rows] = np.arange(len(rows))
    util = _need_rows_utility(na, it, rows, np.arange(n_items))
    logits = np.float32(cfg.beta) * util + pop_log[None, :].astype(np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    cdf = np.cumsum(logits, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    flat = (cdf + np.arange(len(rows))[:, None]).ravel()

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
    v_item = _sample_items(flat, n_items, v_row, rng)
    launch, trend = catalog["launch_time"].to_numpy(), catalog["trend"].to_numpy()
    for round_ in range(200):
        frac = v_time / period - 0.5
        launched = launch[v_item] <= v_time
        # first rounds thin by the trend as well; later ones only insist on the launch date
        accept_p = np.exp(trend[v_item] * frac - np.abs(trend[v_item]) * 0.5) * launched if round_ < 25 else launched
        redo = rng.random(len(v_item)) >= accept_p
        if not redo.any():
            break
        v_item[redo] = _sample_items(flat, n_items, v_row[redo], rng)
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


def _add_dirt(events: pd.DataFrame, cfg: ShopConfig, n_items: int, rng: np.random.Generator) -> pd.DataFrame:
    """Duplicates, missing values and malformed rows, as tracking pipelines produce them."""
    n = len(events)
    dup = events.iloc[np.flatnonzero(rng.random(n) < cfg.duplicate_share)]
    ev = pd.concat([events, dup], ignore_index=True)
    n = len(ev)
    item = ev["item_id"].astype("Int64")
    ts = ev["timestamp"].astype("Int64")
    event = ev["event"].to_numpy(dtype=object, copy=True)
    rating = ev["rating"].to_numpy(copy=True)
    miss = rng.random(n)
    item[miss < cfg.missing_share] = pd.NA
    ts[(miss >= cfg.missing_share) & (miss < 1.6 * cfg.missing_share)] = pd.NA
    bad = rng.random(n)
    m = cfg.malformed_share
    variants = np.array(["View", " click", "add_to_cart", "purchse", "PURCHASE", "viewed"], dtype=object)
    pick = bad < m
    event[pick] = variants[rng.integers(0, len(variants), pick.sum())]
    unknown = (bad >= m) & (bad < 1.4 * m)
    item[unknown] = rng.integers(n_items, n_items + 500, unknown.sum())  # ids not in the catalog
    millis = (bad >= 1.4 * m) & (bad < 1.8 * m) & ts.notna().to_numpy()
    ts[millis] = ts[millis] * 1000  # a client that logged milliseconds
    rated = np.flatnonzero(~np.isnan(rating))
    wrong = rated[rng.random(len(rated)) < 0.03]
    rating[wrong] = rng.choice([0.0, 6.0, -1.0, 10.0], len(wrong))
    ev = ev.assign(item_id=item, timestamp=ts, event=event, rating=rating)
    order = rng.permutation(len(ev))  # logs arrive out of order
    return ev.iloc[order].reset_index(drop=True)


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
    chunks = [
        _simulate_chunk(cfg, humans[i : i + cfg.user_chunk], na, it, catalog, pop_log, rng, period)
        for i in range(0, len(humans), cfg.user_chunk)
    ]
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
    events = pd.DataFrame({
        "user_id": cols["user"].astype(np.int64),
        "item_id": cols["item"].astype(np.int64),
        "event": pd.Categorical.from_codes(cols["event"], EVENT_TYPES).astype(object),
        "timestamp": (START + cols["time"]).astype(np.int64),
        "session_id": session.astype(np.int64),
        "rating": cols["rating"].astype(np.float64),
    }).sort_values(["timestamp", "user_id", "event"], kind="stable", ignore_index=True)  # fmt: skip
    clean_catalog = catalog
    if cfg.duplicate_share or cfg.missing_share or cfg.malformed_share:
        events = _add_dirt(events, cfg, cfg.n_items, rng)
        catalog = _dirty_catalog(catalog, rng)
    catalog = catalog.assign(picture=None)
    return Shop(config=cfg, seed=seed, catalog=catalog, users=users, needs=needs, events=events,
                _need_arrays=na, _clean_catalog=clean_catalog)  # fmt: skip
