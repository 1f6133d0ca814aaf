"""The simulated shop's catalog: a category tree, brands, prices, colours, styles, texts and pictures.

Everything is drawn from a seeded ``numpy.random.Generator``; the same seed gives the same shop.
Pictures are rendered from the attributes (shape from the category, colour, pattern from the
style) so that they carry information that item ids do not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# department -> leaf category -> (median price, nouns used in titles)
CATEGORY_TREE: dict[str, dict[str, tuple[float, tuple[str, ...]]]] = {
    "Clothing": {
        "Dresses": (59.0, ("dress", "midi dress", "wrap dress")),
        "T-shirts": (19.0, ("T-shirt", "tee", "crew-neck top")),
        "Jackets": (89.0, ("jacket", "bomber", "parka")),
        "Jeans": (49.0, ("jeans", "denim trousers", "slim-fit jeans")),
    },
    "Shoes": {
        "Sneakers": (69.0, ("sneakers", "trainers", "running shoes")),
        "Boots": (99.0, ("boots", "ankle boots", "chelsea boots")),
        "Sandals": (35.0, ("sandals", "slides", "flip-flops")),
    },
    "Home": {
        "Lamps": (45.0, ("table lamp", "floor lamp", "desk lamp")),
        "Cushions": (22.0, ("cushion", "throw pillow", "floor cushion")),
        "Mugs": (12.0, ("mug", "coffee cup", "travel mug")),
        "Vases": (29.0, ("vase", "bud vase", "flower vase")),
    },
    "Electronics": {
        "Headphones": (79.0, ("headphones", "earbuds", "over-ear headset")),
        "Phone cases": (18.0, ("phone case", "folio case", "bumper case")),
        "Speakers": (65.0, ("speaker", "bluetooth speaker", "soundbar")),
    },
    "Beauty": {
        "Lipstick": (16.0, ("lipstick", "lip tint", "matte lipstick")),
        "Perfume": (55.0, ("perfume", "eau de parfum", "fragrance")),
        "Face cream": (28.0, ("face cream", "moisturiser", "night cream")),
    },
    "Sports": {
        "Yoga mats": (32.0, ("yoga mat", "exercise mat", "pilates mat")),
        "Water bottles": (15.0, ("water bottle", "flask", "sports bottle")),
        "Backpacks": (54.0, ("backpack", "daypack", "rucksack")),
    },
}
LEAVES: list[tuple[str, str]] = [(d, leaf) for d, leaves in CATEGORY_TREE.items() for leaf in leaves]

COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (30, 30, 30), "grey": (128, 128, 128), "navy": (25, 40, 100), "blue": (50, 110, 210),
    "teal": (0, 128, 128), "green": (40, 140, 60), "olive": (110, 120, 40), "yellow": (235, 200, 40),
    "orange": (240, 130, 30), "red": (200, 30, 40), "pink": (240, 120, 170), "purple": (120, 60, 160),
    "brown": (120, 75, 40), "beige": (205, 185, 150),
}  # fmt: skip
STYLES: dict[str, tuple[str, ...]] = {
    "classic": ("classic", "timeless", "traditional"),
    "sporty": ("sporty", "athletic", "active"),
    "minimal": ("minimalist", "clean-lined", "understated"),
    "boho": ("boho", "bohemian", "free-spirited"),
    "retro": ("retro", "vintage-inspired", "70s-style"),
    "luxury": ("luxury", "premium", "deluxe"),
}
BRANDS: list[tuple[str, str]] = [  # (name, price tier)
    ("Norda", "mid"), ("Velto", "budget"), ("Ambro", "premium"), ("Kessa", "mid"), ("Lumio", "mid"),
    ("Ostra", "premium"), ("Pavo", "budget"), ("Quill & Co", "premium"), ("Rivan", "mid"), ("Sola", "budget"),
    ("Tarn", "mid"), ("Umbra", "premium"), ("Vesper", "premium"), ("Wylde", "mid"), ("Yarrow", "budget"),
    ("Zephyr", "mid"), ("Brisk", "budget"), ("Cobalt", "mid"), ("Dune", "budget"), ("Ember", "premium"),
    ("Fjell", "mid"), ("Gala", "premium"), ("Haven", "budget"), ("Isola", "mid"),
]  # fmt: skip
TIER_PRICE = {"budget": 0.7, "mid": 1.0, "premium": 1.7}
FEATURES: dict[str, tuple[str, ...]] = {
    "Clothing": ("Made from soft organic cotton.", "Machine washable at 30 degrees.", "A relaxed fit that layers well.",
                 "Cut from a breathable, stretchy fabric."),
    "Shoes": ("Cushioned insole for all-day comfort.", "Durable rubber outsole.", "Lightweight and flexible.",
              "Water-resistant upper."),
    "Home": ("Hand-finished by small workshops.", "Fits any living room or bedroom.", "Easy to clean.",
             "Ceramic glaze with a subtle sheen."),
    "Electronics": ("Up to 30 hours of battery life.", "Bluetooth 5.3 with multipoint pairing.",
                    "USB-C fast charging.", "Drop-tested to two metres."),
    "Beauty": ("Vegan and cruelty-free.", "Dermatologically tested.", "Long-lasting, lightweight formula.",
               "Free from parabens and sulphates."),
    "Sports": ("Non-slip and sweat-resistant.", "BPA-free materials.", "Packs down small for travel.",
               "Reinforced seams for heavy use."),
}  # fmt: skip
TITLE_TEMPLATES = (
    "{brand} {adj} {colour} {noun}",
    "{Colour} {noun} by {brand}, {style} edition",
    "{brand} {noun} in {colour}: {adj} look",
    "The {adj} {noun} ({colour}) | {brand}",
)
DESC_TIER = {
    "budget": ("Great value for everyday use.", "An affordable favourite."),
    "mid": ("Quality you can rely on.", "Well made at a fair price."),
    "premium": ("Crafted from premium materials.", "A statement piece built to last."),
}


def make_catalog(n_items: int, rng: np.random.Generator, period_s: int) -> pd.DataFrame:
    """Draw ``n_items`` products. Columns: ids, category tree, brand, price, colour, style, texts,
    latent ``quality``, ``launch_time`` (seconds from the start; 0 = already on sale) and ``trend``
    (popularity drift over the period)."""
    n_leaf = len(LEAVES)
    leaf_share = rng.dirichlet(np.full(n_leaf, 2.0))
    leaf = rng.choice(n_leaf, size=n_items, p=leaf_share)
    dept_names = list(CATEGORY_TREE)
    leaf_dept = np.array([dept_names.index(d) for d, _ in LEAVES])
    dept = leaf_dept[leaf]
    # Each brand serves two departments; an item takes one of the brands of its department.
    brand_depts = np.stack([rng.permutation(len(dept_names))[:2] for _ in BRANDS])
    serves = np.zeros((len(dept_names), len(BRANDS)), dtype=float)
    serves[brand_depts[:, 0], np.arange(len(BRANDS))] = 1.0
    serves[brand_depts[:, 1], np.arange(len(BRANDS))] = 1.0
    serves[serves.sum(axis=1) == 0] = 1.0  # a department no brand drew is served by all
    p_brand = serves[dept] / serves[dept].sum(axis=1, keepdims=True)
    brand = (p_brand.cumsum(axis=1) > rng.random((n_items, 1))).argmax(axis=1)
    tiers = np.array([t for _, t in BRANDS])
    tier = tiers[brand]
    leaf_price = np.array([CATEGORY_TREE[d][lf][0] for d, lf in LEAVES])
    tier_mult = np.vectorize(TIER_PRICE.get)(tier)
    price = leaf_price[leaf] * tier_mult * np.exp(rng.normal(0.0, 0.35, n_items))
    price = np.round(np.maximum(price, 2.0)) - 0.01
    colour = rng.integers(0, len(COLOURS), n_items)
    style = rng.integers(0, len(STYLES), n_items)
    quality = rng.normal(0.0, 1.0, n_items) + 0.3 * (tier == "premium")
    launched_later = rng.random(n_items) < 0.25
    launch_time = np.where(launched_later, rng.integers(0, period_s, n_items), 0)
    trend = rng.normal(0.0, 1.0, n_items)

    colour_names, style_names = np.array(list(COLOURS)), np.array(list(STYLES))
    cat = pd.DataFrame({
        "item_id": np.arange(n_items, dtype=np.int64),
        "department": np.array(dept_names)[dept],
        "category": np.array([lf for _, lf in LEAVES])[leaf],
        "brand": np.array([b for b, _ in BRANDS])[brand],
        "price_tier": tier,
        "price": price.astype(np.float64),
        "colour": colour_names[colour],
        "style": style_names[style],
        "quality": quality.astype(np.float32),
        "launch_time": launch_time.astype(np.int64),
        "trend": trend.astype(np.float32),
    })  # fmt: skip
    cat["title"], cat["description"] = _texts(cat, leaf, rng)
    cat["text"] = cat["title"] + ". " + cat["description"]
    return cat


def _texts(cat: pd.DataFrame, leaf: np.ndarray, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Titles and descriptions written from attributes with varied wording (one pass over items)."""
    n = len(cat)
    t_choice, adj_choice, noun_choice = rng.integers(0, 4, n), rng.integers(0, 3, n), rng.integers(0, 3, n)
    f1, f2, tier_choice = rng.integers(0, 4, n), rng.integers(1, 4, n), rng.integers(0, 2, n)
    titles, descs = [], []
    for i, row in enumerate(cat[["department", "category", "brand", "colour", "style", "price_tier"]].itertuples(index=False)):
        noun = CATEGORY_TREE[row.department][row.category][1][noun_choice[i]]
        adj = STYLES[row.style][adj_choice[i]]
        titles.append(TITLE_TEMPLATES[t_choice[i]].format(
            brand=row.brand, adj=adj, colour=row.colour, Colour=row.colour.capitalize(), noun=noun, style=row.style))
        feats = FEATURES[row.department]
        desc = (
            f"{_article(noun)}{adj} {row.colour} {noun} from {row.brand}. {feats[f1[i]]} {feats[(f1[i] + f2[i]) % 4]} "
            f"{DESC_TIER[row.price_tier][tier_choice[i]]}"
        )  # fmt: skip
        descs.append(desc[0].upper() + desc[1:])
    return titles, descs


def _article(noun: str) -> str:
    plural = noun.endswith("s") and not noun.endswith(("ss", "us"))
    return "" if plural else ("An " if noun[0] in "aeiou" else "A ")


def _shape_masks(size: int) -> np.ndarray:
    """One boolean mask per leaf category: a distinct silhouette (shape and scale)."""
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    r = 0.8
    shapes = [
        x**2 + y**2 < r**2,  # circle
        (abs(x) < r * 0.8) & (abs(y) < r * 0.8),  # square
        (y < r * 0.7) & (abs(x) < (y + r) * 0.55),  # triangle
        abs(x) + abs(y) < r,  # diamond
        (x**2 + y**2 < r**2) & (x**2 + y**2 > (r * 0.5) ** 2),  # ring
        ((abs(x) < r / 3) & (abs(y) < r)) | ((abs(y) < r / 3) & (abs(x) < r)),  # cross
        (abs(x) < r * 0.45) & (abs(y) < r),  # tall bar
        (abs(x) < r) & (abs(y) < r * 0.4),  # wide bar
        (abs(x) < r) & (abs(x) * 0.5 + abs(y) * 0.866 < r * 0.866),  # hexagon
        ((abs(x) < r) & (y < -r * 0.4) & (y > -r)) | ((abs(x) < r * 0.4) & (y >= -r * 0.4) & (y < r)),  # T
        (x / r) ** 2 + (y / (r * 0.55)) ** 2 < 1,  # wide ellipse
        (x / (r * 0.5)) ** 2 + (y / r) ** 2 < 1,  # tall ellipse
        (abs(y) < r * 0.6) & (abs(x) < r * (0.65 + 0.35 * y / (r * 0.6))),  # trapezoid
    ]
    masks = []
    for i in range(len(LEAVES)):
        base = shapes[i % len(shapes)]
        if i >= len(shapes):  # second use of a shape: a smaller version of it
            small = np.zeros_like(base)
            s = size // 4
            small[s : size - s, s : size - s] = base[::2, ::2][: size - 2 * s, : size - 2 * s]
            base = small
        masks.append(base)
    return np.stack(masks)


def _style_patterns(size: int) -> np.ndarray:
    """One brightness pattern per style (solid, stripes, gradient, dots, checks, diagonal)."""
    y, x = np.mgrid[0:size, 0:size] / size
    k = 6
    return np.stack([
        np.ones((size, size)),  # classic: solid
        np.where((y * k * 2).astype(int) % 2 == 0, 1.0, 0.55),  # sporty: horizontal stripes
        0.65 + 0.35 * x,  # minimal: soft gradient
        np.where(((x * k % 1 - 0.5) ** 2 + (y * k % 1 - 0.5) ** 2) < 0.06, 0.45, 1.0),  # boho: dots
        np.where(((x * k).astype(int) + (y * k).astype(int)) % 2 == 0, 1.0, 0.6),  # retro: checks
        np.where(((x + y) * k * 1.5).astype(int) % 2 == 0, 1.0, 0.7),  # luxury: diagonal
    ])  # fmt: skip


def render_pictures(catalog: pd.DataFrame, item_ids: np.ndarray | None = None, size: int = 64) -> np.ndarray:
    """Render product pictures (``n x size x size x 3`` uint8) from category, colour and style.

    Vectorized over items: a leaf's mask and a style's pattern are looked up, then coloured.
    """
    ids = catalog["item_id"].to_numpy() if item_ids is None else np.asarray(item_ids)
    rows = catalog.set_index("item_id").loc[ids]
    leaf_names = [lf for _, lf in LEAVES]
    leaf = pd.Categorical(rows["category"], categories=leaf_names).codes
    style = pd.Categorical(rows["style"], categories=list(STYLES)).codes
    rgb = np.array([COLOURS[c] for c in rows["colour"]], dtype=np.float32)
    mask = _shape_masks(size)[leaf][..., None]
    shade = _style_patterns(size)[style][..., None].astype(np.float32)
    background = np.float32(246.0)
    img = np.where(mask, rgb[:, None, None, :] * shade, background)
    return np.clip(img, 0, 255).astype(np.uint8)
