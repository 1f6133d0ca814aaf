"""Plots where looking beats reading: product grids next to recommendations, long tails, funnels."""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
import pandas as pd


def _plt():
    import matplotlib.pyplot as plt

    return plt


def show_items(pictures: np.ndarray, titles: Sequence[str], captions: Sequence[str] | None = None,
               ncols: int = 5, title: str | None = None, width: float = 2.2):  # fmt: skip
    """A grid of product pictures with wrapped titles (and optional captions such as scores)."""
    plt = _plt()
    n = len(pictures)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, width * 1.35 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k in range(n):
        ax = axes.ravel()[k]
        ax.imshow(pictures[k])
        label = "\n".join(textwrap.wrap(str(titles[k]), 24)[:3])
        if captions is not None:
            label += f"\n{captions[k]}"
        ax.set_title(label, fontsize=7.5)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def show_recommendations(shop, user_id: int, item_ids: Sequence[int], scores: Sequence[float] | None = None,
                         history: Sequence[int] | None = None, ncols: int = 5):  # fmt: skip
    """What a shopper interacted with, then what the model recommends, as pictures with titles."""
    cat = shop.catalog.set_index("item_id")
    figs = []
    if history is not None and len(history):
        h = list(history)[-ncols:]
        figs.append(show_items(shop.pictures(h), cat.loc[h, "title"].tolist(), ncols=ncols,
                               title=f"user {user_id}: recent interactions"))  # fmt: skip
    ids = list(item_ids)
    caps = None if scores is None else [f"score {s:.2f}" for s in scores]
    figs.append(show_items(shop.pictures(ids), cat.loc[ids, "title"].tolist(), caps, ncols=ncols,
                           title=f"user {user_id}: top-{len(ids)} recommendations"))  # fmt: skip
    return figs


def plot_long_tail(tail: pd.DataFrame, label: str = "", ax=None):
    """Cumulative share of interactions against share of items (from :func:`analysis.long_tail`)."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    ax.plot(tail["item_share"], tail["cum_share"], label=label or None)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    ax.set(xlabel="share of items (most popular first)", ylabel="share of interactions", title="Long tail")
    if label:
        ax.legend()
    return ax


def plot_distribution(values: pd.Series, title: str, xlabel: str, log: bool = True, ax=None, bins: int = 40):
    """Histogram (log-log by default: activity and popularity are heavy-tailed)."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    v = np.asarray(values, float)
    # integer counts: bin edges halfway between integers, so no bin falls between two counts
    edges = np.unique(np.round(np.logspace(0, np.log10(max(v.max(), 2) + 1), bins))) - 0.5 if log else bins
    ax.hist(v, bins=edges)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel="count")
    return ax


def plot_funnel(table: pd.DataFrame, ax=None):
    """Bar chart of events per funnel stage with the conversion from the previous stage."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    bars = ax.bar(table.index, table["events"], color=["#4c72b0", "#55a868", "#c44e52", "#8172b2"][: len(table)])
    for bar, conv in zip(bars, table["from_previous"]):
        if pd.notna(conv):
            ax.annotate(f"{conv:.0%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom")
    ax.set(title="Funnel (events; % = conversion from previous stage)", ylabel="events", yscale="log")
    return ax


def plot_embedding_map(coords: np.ndarray, labels: Sequence, title: str = "", ax=None, max_legend: int = 20):
    """Scatter of 2-D item coordinates coloured by a label (category, department...)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    lab = pd.Series(np.asarray(labels)).astype(str)
    cmap = plt.get_cmap("tab20")
    for j, value in enumerate(sorted(lab.unique())):
        m = (lab == value).to_numpy()
        ax.scatter(coords[m, 0], coords[m, 1], s=6, color=cmap(j % 20), label=value if j < max_legend else None)
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize=6, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return ax


def show_neighbours(pictures: np.ndarray, titles: Sequence[str], queries: Sequence[int], neighbours: np.ndarray,
                    title: str | None = None, width: float = 1.6):  # fmt: skip
    """One row per query: its picture, then its nearest neighbours' pictures (a framed first column)."""
    plt = _plt()
    queries = list(queries)
    ncols = 1 + neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), ncols, figsize=(width * ncols, width * 1.3 * len(queries)), squeeze=False)
    for r, q in enumerate(queries):
        for c, i in enumerate([q, *neighbours[r]]):
            ax = axes[r, c]
            ax.imshow(pictures[i])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title("\n".join(textwrap.wrap(str(titles[i]), 20)[:2]), fontsize=6.5)
            if c == 0:
                for side in ax.spines.values():
                    side.set(color="crimson", linewidth=2.5)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
