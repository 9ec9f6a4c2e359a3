"""A widening autoencoder over song metadata: song embeddings for content neighbours.

Each song is a multi-hot vector of its metadata (:func:`song_features`): release year and
month, genres and detailed genres, artist, album, and the frequent tags of the training
playlists that hold it. A tied autoencoder (the Kakao Arena Melon write-up: ``input -> 512 ->
512 -> 1024 -> 512 -> 512 -> input``, ReLU, dropout, decoder weights the transposed encoder
weights) compresses it; the widest layer is the song's embedding, and faiss finds its cosine
neighbours.

As a model on its own, a query is scored by the summed cosine similarity of its songs'
``n_neighbors`` nearest neighbours: content alone, no co-occurrence. Its catalogue is every song
of the metadata table, so songs in no training playlist (cold songs) are recommended too. Its
main use is :mod:`segue.inference.densify`: a short query of a collaborative model is padded
with its songs' content neighbours before that model scores it.

``dropout`` is a *drop* probability (as ``torch.nn.Dropout`` and the Kuchaiev & Ginsburg code
the Melon solutions followed), applied to the code during training.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.data.interactions import Interactions
from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.exceptions import ModelFormatError, ParameterError
from segue.models.base import BaseRecommender, FitData
from segue.models.registry import register

__all__ = ["FIELDS", "ContentAutoencoder", "song_features"]

FIELDS = ("year", "month", "genre", "detail_genre", "artist", "album", "tag")
"""Metadata fields a song vector can hold (those a dataset lacks are skipped)."""

_IVF_FROM = 200_000  # songs from which the neighbour index is IVF instead of exact
_SEARCH_ROWS = 4096  # seeds per faiss search call
_CACHE_BYTES = 1 << 29  # neighbour lists kept per song up to 512 MiB


def _pairs_of(values: pd.Series, rows: np.ndarray, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(row, "prefix=value") pairs of a scalar or list column, missing values dropped."""
    frame = pd.DataFrame({"row": rows, "value": values.to_numpy(dtype=object)})
    if frame["value"].map(lambda v: isinstance(v, list | tuple | np.ndarray)).any():
        frame = frame.explode("value")
    frame = frame.dropna(subset=["value"])
    frame = frame[frame["value"].astype(str) != ""]
    return frame["row"].to_numpy(np.int64), (prefix + frame["value"].astype(str)).to_numpy(object)


def song_features(
    playlists: Playlists,
    songs: IdMap,
    *,
    fields: Sequence[str] = FIELDS,
    n_tags: int = 100,
    min_count: int = 2,
    max_features: int = 8192,
) -> tuple[sp.csr_array, dict[str, int]]:
    """``(len(songs), n_features)`` binary CSR of the songs' metadata, and features per field.

    Rows follow ``songs`` (songs without metadata get empty rows). A feature is kept when at
    least ``min_count`` songs have it, the ``max_features`` most frequent overall; a single
    song's own album or artist says nothing about its neighbours. ``tag`` marks a song with the
    ``n_tags`` most frequent tags of the playlists holding it (Melon; ``playlists.playlists``
    must have ``tags``). ``year``/``month`` come from ``issue_date`` (``yyyymmdd``, 0 unknown).
    """
    tracks = playlists.tracks
    rows = songs.numbers(tracks["track"].to_numpy(dtype=object), missing="negative")
    keep = rows >= 0
    tracks, rows = tracks[keep], rows[keep]
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if "issue_date" in tracks.columns and ("year" in fields or "month" in fields):
        date = pd.to_numeric(tracks["issue_date"], errors="coerce").fillna(0).astype(np.int64)
        year, month = date // 10000, (date // 100) % 100
        if "year" in fields:
            ok = (year > 0).to_numpy()
            parts.append(_pairs_of(year[ok], rows[ok], "year="))
        if "month" in fields:
            ok = ((month >= 1) & (month <= 12)).to_numpy()
            parts.append(_pairs_of(month[ok], rows[ok], "month="))
    for field, column in (
        ("genre", "genres"),
        ("detail_genre", "detail_genres"),
        ("artist", "artist"),
        ("album", "album"),
    ):
        if field in fields and column in tracks.columns:
            parts.append(_pairs_of(tracks[column], rows, f"{field}="))
    if "tag" in fields and n_tags > 0 and "tags" in playlists.playlists.columns:
        parts.append(_tag_pairs(playlists, songs, n_tags))
    if not parts:
        return sp.csr_array((len(songs), 0), dtype=np.float32), {}
    song_idx = np.concatenate([p[0] for p in parts])
    names = np.concatenate([p[1] for p in parts])
    if len(names) == 0:
        return sp.csr_array((len(songs), 0), dtype=np.float32), {}
    pairs = pd.DataFrame({"song": song_idx, "name": names}).drop_duplicates()
    counts = pairs["name"].value_counts(sort=True)
    counts = counts[counts >= min_count].iloc[:max_features]
    pairs = pairs[pairs["name"].isin(counts.index)]
    vocab = pd.Index(np.sort(counts.index.to_numpy(dtype=str)))
    cols = vocab.get_indexer(pairs["name"].to_numpy(dtype=str))
    matrix = sp.csr_array(
        (np.ones(len(cols), dtype=np.float32), (pairs["song"].to_numpy(np.int64), cols)),
        shape=(len(songs), len(vocab)),
        dtype=np.float32,
    )
    matrix.sort_indices()
    per_field = pd.Series(vocab.to_numpy(dtype=str)).str.split("=", n=1).str[0].value_counts()
    return matrix, {str(k): int(v) for k, v in per_field.items()}


def _tag_pairs(playlists: Playlists, songs: IdMap, n_tags: int) -> tuple[np.ndarray, np.ndarray]:
    """(song, "tag=T") for the ``n_tags`` most frequent playlist tags of the song's playlists."""
    tags = playlists.playlists[["pid", "tags"]].explode("tags").dropna(subset=["tags"])
    frequent = tags["tags"].value_counts().index[:n_tags]
    tags = tags[tags["tags"].isin(frequent)]
    joined = playlists.entries[["pid", "track"]].merge(tags, on="pid")
    song = songs.numbers(joined["track"].to_numpy(dtype=object), missing="negative")
    ok = song >= 0
    return song[ok].astype(np.int64), ("tag=" + joined["tags"].astype(str)).to_numpy(object)[ok]


def _catalogue(train: Interactions) -> Interactions:
    """``train`` with the metadata's songs that no training playlist holds as empty columns."""
    playlists = train.playlists
    assert playlists is not None
    tracks = train.items.columns(ItemKind.TRACK) if train.items.has_kinds else slice(None)
    ids = pd.unique(playlists.tracks["track"].to_numpy(dtype=object))
    cold = ids[~pd.Index(ids, dtype=object).isin(train.items.ids[tracks])]
    if not len(cold):
        return train
    items = IdMap(
        np.concatenate([train.items.ids.astype(object), cold]),
        kind=train.items.kind,
        kinds=np.concatenate([train.items.kinds, np.zeros(len(cold), dtype=np.uint8)]),
    )
    m = train.matrix
    matrix = sp.csr_array((m.data, m.indices, m.indptr), shape=(m.shape[0], len(items)))
    return Interactions(train.users, items, matrix, playlists)


def _network(t: Any, n_in: int, hidden: Sequence[int], dropout: float) -> Any:
    """The tied autoencoder: encoder weights ``W_i``, decoder ``W_i.T`` with its own biases."""
    nn = t.nn

    class TiedAutoencoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            sizes = [n_in, *hidden]
            self.weights = nn.ParameterList(
                [nn.Parameter(t.empty(sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
            )
            for w in self.weights:
                nn.init.xavier_uniform_(w)
            self.enc_bias = nn.ParameterList([nn.Parameter(t.zeros(s)) for s in sizes[1:]])
            self.dec_bias = nn.ParameterList([nn.Parameter(t.zeros(s)) for s in sizes[:-1]])
            self.drop = nn.Dropout(dropout)

        def encode(self, x: Any) -> Any:
            h = x
            for i, (w, b) in enumerate(zip(self.weights, self.enc_bias, strict=True)):
                h = (t.sparse.mm(h, w.t()) if i == 0 and h.is_sparse else h @ w.t()) + b
                h = t.relu(h)
            return h

        def forward(self, x: Any) -> Any:
            h = self.drop(self.encode(x))
            n = len(self.weights)
            for i in reversed(range(n)):
                h = h @ self.weights[i] + self.dec_bias[i]
                if i:
                    h = t.relu(h)
            return h  # logits of the input features

    return TiedAutoencoder()


@register("content-autoencoder")
class ContentAutoencoder(BaseRecommender):
    """Song embeddings from metadata by a tied, widening autoencoder (module docstring).

    Parameters
    ----------
    hidden
        Encoder layer sizes; the last is the embedding (the decoder mirrors them).
    dropout
        Drop probability on the code while training.
    fields
        Comma-separated metadata fields to use (:data:`FIELDS`); those the data lacks are
        skipped.
    n_tags
        Most frequent playlist tags used as song features (Melon).
    min_count, max_features
        A feature is kept when at least ``min_count`` songs have it; at most ``max_features``.
    n_neighbors
        Content neighbours per query song when scoring.
    lr, epochs, batch_size, patience
        Adam's learning rate, epochs at most, songs per batch, epochs without a better
        validation NDCG before stopping.
    validation_rows
        Training playlists whose last songs are hidden to compute that NDCG (carved from the
        training data; their hidden songs do not give their playlists' tags to the features).
    seed, device
        Random seed; ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """

    libraries = ("torch", "faiss-cpu")
    required_state = ("weights_", "features_", "feature_fields_")
    state_shapes: ClassVar[dict[str, tuple[Any, ...]]] = {"features_": ("items", None)}
    unsaved_state = frozenset({"history_epochs_"})

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (512, 512, 1024),
        dropout: float = 0.8,
        fields: str = ",".join(FIELDS),
        n_tags: int = 100,
        min_count: int = 2,
        max_features: int = 8192,
        n_neighbors: int = 100,
        lr: float = 1e-3,
        epochs: int = 20,
        batch_size: int = 256,
        patience: int = 3,
        validation_rows: int = 1000,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.fields = fields
        self.n_tags = n_tags
        self.min_count = min_count
        self.max_features = max_features
        self.n_neighbors = n_neighbors
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_rows = validation_rows
        self.seed = seed
        self.device = device
        self._lock = threading.Lock()  # the neighbour cache fills from serving threads too

    def _validate_params(self) -> None:
        from segue.nn.runtime import check_device

        hidden = self.hidden
        if (
            not isinstance(hidden, list | tuple)
            or not hidden
            or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)
        ):
            raise ParameterError(
                f"hidden must be a non-empty list of positive ints, got {hidden!r}"
            )
        if not isinstance(self.fields, str) or not set(self._fields()) <= set(FIELDS):
            raise ParameterError(
                f"fields must be comma-separated names of {FIELDS}, got {self.fields!r}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ParameterError(f"dropout is a drop probability in [0, 1), got {self.dropout}")
        for name in (
            "n_neighbors",
            "epochs",
            "batch_size",
            "patience",
            "min_count",
            "validation_rows",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"{name} must be a positive int, got {value!r}")
        for name in ("n_tags", "max_features"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ParameterError(f"{name} must be an int >= 0, got {value!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ParameterError(f"lr must be a positive number, got {self.lr!r}")
        check_device(self.device)

    def _fields(self) -> list[str]:
        return [f.strip() for f in self.fields.split(",") if f.strip()]

    # fitting --------------------------------------------------------------------------------
    def _fit(self, data: FitData) -> Interactions:
        from segue.nn.holdout import carve_holdout

        if data.playlists is None:
            raise ParameterError(
                "content-autoencoder needs song metadata: train it on playlists (--mpd/--melon)"
            )
        view = _catalogue(data.train)
        holdout = carve_holdout(
            view.matrix, n_rows=self.validation_rows, seed=self.seed, order=_order(data, view)
        )
        playlists = data.playlists
        if holdout is not None:  # the hidden songs must not carry their playlists' tags
            playlists = _without(playlists, view, holdout.answers, holdout.rows)
        features, per_field = song_features(
            playlists,
            view.items,
            fields=self._fields(),
            n_tags=self.n_tags,
            min_count=self.min_count,
            max_features=self.max_features,
        )
        if features.shape[1] == 0:
            raise ParameterError(
                "content-autoencoder found no song metadata feature shared by two songs "
                f"(fields {self.fields}): the data has none of them"
            )
        self.features_ = features
        self.feature_fields_ = per_field
        self._train(holdout)
        return view

    def _train(self, holdout: Any) -> None:
        from segue.nn.holdout import holdout_ndcg
        from segue.nn.runtime import resolve_device, seeded, torch
        from segue.nn.tensors import load_weights, sparse_rows, weights_of
        from segue.nn.training import fit_epochs

        t = torch()
        dev = resolve_device(self.device)
        features = self.features_
        songs = np.flatnonzero(np.diff(features.indptr) > 0)
        with seeded(self.seed, dev) as gen:
            net = _network(t, features.shape[1], list(self.hidden), float(self.dropout)).to(dev)
            opt = t.optim.Adam(net.parameters(), lr=float(self.lr))
            loss_fn = t.nn.BCEWithLogitsLoss()

            def run_epoch(_: int) -> float:
                net.train()
                order = songs[t.randperm(len(songs), generator=gen).numpy()]
                total = 0.0
                for start in range(0, len(order), self.batch_size):
                    rows = sp.csr_array(features[order[start : start + self.batch_size]])
                    x = sparse_rows(rows, dev)
                    opt.zero_grad()
                    loss = loss_fn(net(x), x.to_dense())
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * rows.shape[0]
                return total / max(1, len(order))

            def validate() -> float:
                self.weights_ = weights_of(net)
                self._reset_cache()
                return holdout_ndcg(self._score_rows, holdout)

            def snapshot() -> dict[str, np.ndarray]:
                return weights_of(net)

            history = fit_epochs(
                model="content-autoencoder",
                epochs=self.epochs,
                run_epoch=run_epoch,
                validate=validate if holdout is not None else None,
                patience=self.patience,
                snapshot=snapshot,
                restore=lambda w: load_weights(net, w),
            )
        self.weights_ = weights_of(net)
        self._reset_cache()
        self.epochs_trained_ = len(history)
        self.history_epochs_ = [(e.loss, e.metric) for e in history]

    def check_state(self) -> None:
        """The base checks, plus weights matching ``hidden`` and the feature count."""
        super().check_state()
        sizes = [self.features_.shape[1], *self.hidden]
        for i in range(len(sizes) - 1):
            w = self.weights_.get(f"weights.{i}")
            if w is None or tuple(w.shape) != (sizes[i + 1], sizes[i]):
                raise ModelFormatError(f"weights.{i} does not match hidden={list(self.hidden)}")

    # embeddings and neighbours ----------------------------------------------------------------
    def _reset_cache(self) -> None:
        self._emb = None
        self._index = None
        self._nn = None

    def embeddings(self) -> np.ndarray:
        """``(n_items, code)`` L2-normalised song embeddings, computed once from the weights.

        Songs with no metadata and non-song columns have zero rows.
        """
        emb = getattr(self, "_emb", None)
        if emb is not None:
            return emb
        from segue.nn.runtime import torch
        from segue.nn.tensors import load_weights, sparse_rows

        t = torch()
        net = _network(t, self.features_.shape[1], list(self.hidden), float(self.dropout))
        load_weights(net, self.weights_)
        net.eval()
        out = np.zeros((self.features_.shape[0], int(self.hidden[-1])), dtype=np.float32)
        has = np.flatnonzero(np.diff(self.features_.indptr) > 0)
        with t.no_grad():
            for start in range(0, len(has), 4096):
                rows = has[start : start + 4096]
                x = sparse_rows(sp.csr_array(self.features_[rows]), t.device("cpu"))
                out[rows] = net.encode(x).numpy()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        self._emb = out
        return out

    def _faiss_index(self) -> Any:
        index = getattr(self, "_index", None)
        if index is not None:
            return index
        from segue._extras import require

        faiss = require("faiss", "the content autoencoder's neighbours")
        emb = self.embeddings()
        ids = np.flatnonzero(np.abs(emb).sum(axis=1) > 0).astype(np.int64)
        d = emb.shape[1]
        if len(ids) >= _IVF_FROM:
            nlist = int(4 * math.sqrt(len(ids)))
            flat = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            flat.train(emb[ids])
            flat.nprobe = 16
        else:
            flat = faiss.IndexFlatIP(d)
        index = faiss.IndexIDMap(flat)
        index.add_with_ids(emb[ids], ids)
        self._index = index
        return index

    def neighbours(self, idx: IdxArray, k: int) -> tuple[IdxArray, np.ndarray]:
        """The ``k`` nearest songs (cosine) of each item index, itself left out.

        Returns ``(n, k)`` int32 item indices (``-1`` padding: a song without metadata has no
        neighbours) and float32 similarities, nearest first.
        """
        self.check_fitted()
        return self._neighbours(idx, k)

    def _neighbours(self, idx: IdxArray, k: int) -> tuple[IdxArray, np.ndarray]:
        """:meth:`neighbours`, from a cache of each song's lists (searched once per song)."""
        idx = np.asarray(idx, dtype=np.int64)
        width = max(k, self.n_neighbors)
        with self._lock:
            cache = getattr(self, "_nn", None)
            if cache is None or cache[0].shape[1] < k:
                n = self.features_.shape[0]
                if n * width * 8 > _CACHE_BYTES:  # too big to keep: search every time
                    return self._search(idx, k)
                cache = (
                    np.full((n, width), -1, dtype=np.int32),
                    np.zeros((n, width), dtype=np.float32),
                    np.zeros(n, dtype=bool),
                )
                self._nn = cache
            found, sims, done = cache
            todo = np.unique(idx[~done[idx]])
            if len(todo):
                found[todo], sims[todo] = self._search(todo, found.shape[1])
                done[todo] = True
        return found[idx, :k], sims[idx, :k]

    def _search(self, idx: np.ndarray, k: int) -> tuple[IdxArray, np.ndarray]:
        out_idx = np.full((len(idx), k), -1, dtype=np.int32)
        out_sim = np.zeros((len(idx), k), dtype=np.float32)
        emb = self.embeddings()
        has = np.flatnonzero(np.abs(emb[idx]).sum(axis=1) > 0) if len(idx) else idx
        if not len(has):
            return out_idx, out_sim
        index = self._faiss_index()
        k_search = min(k + 1, index.ntotal)
        for start in range(0, len(has), _SEARCH_ROWS):
            part = has[start : start + _SEARCH_ROWS]
            sims, found = index.search(emb[idx[part]], k_search)
            found[found == idx[part, None]] = -1  # the song itself
            order = np.argsort(found < 0, axis=1, kind="stable")[:, :k]
            found = np.take_along_axis(found, order, axis=1)
            sims = np.take_along_axis(sims, order, axis=1)
            width = found.shape[1]
            out_idx[part, :width] = found
            out_sim[part, :width] = np.where(found >= 0, sims, 0.0)
        return out_idx, out_sim

    # scoring --------------------------------------------------------------------------------
    def _score_rows(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        """Summed similarity of the rows' songs' neighbours (before the tie-break)."""
        n_items = history.shape[1]
        tracks = np.zeros(n_items, dtype=bool)
        tracks[np.flatnonzero(np.diff(self.features_.indptr) > 0)] = True
        rows = sp.csr_array(history)
        seeds = np.unique(rows.indices[tracks[rows.indices]])
        scores = np.zeros(rows.shape, dtype=np.float32)
        if not len(seeds):
            return scores
        found, sims = self._neighbours(seeds, self.n_neighbors)
        r = np.repeat(np.arange(len(seeds)), found.shape[1])
        c, v = found.ravel(), sims.ravel()
        ok = c >= 0
        near = sp.csr_array((v[ok], (r[ok], c[ok])), shape=(len(seeds), n_items))
        pick = sp.csr_array(
            (np.ones(len(seeds), dtype=np.float32), (seeds, np.arange(len(seeds)))),
            shape=(n_items, len(seeds)),
        )
        binary = sp.csr_array((np.ones_like(rows.data), rows.indices, rows.indptr), rows.shape)
        scores += (binary @ pick @ near).toarray()
        return scores

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        scores = self._score_rows(user_idx, history)
        # ties (and rows with no song that has metadata) go to the popular songs, below any
        # neighbour's similarity
        pop = self.fallback_scores_
        scores += (1e-4 * pop / max(float(pop.max()), 1.0)).astype(np.float32)
        return scores


def _without(
    playlists: Playlists, view: Interactions, hidden: sp.csr_array, rows: IdxArray
) -> Playlists:
    """``playlists`` without the entries a validation holdout hides (``hidden`` over ``rows``)."""
    coo = sp.coo_array(hidden)
    entries = playlists.entries
    pairs = pd.DataFrame(
        {
            "pid": pd.Series(view.users.ids[rows[coo.row]]).astype(entries["pid"].dtype),
            "track": pd.Series(view.items.ids[coo.col]).astype(entries["track"].dtype),
            "hidden": True,
        }
    )
    entries = entries.merge(pairs, on=["pid", "track"], how="left")
    entries = entries[entries["hidden"].isna()].drop(columns="hidden")
    return Playlists(playlists.playlists, entries, playlists.tracks)


def _order(data: FitData, view: Interactions) -> sp.csr_array | None:
    """``data.order()`` widened to the catalogue's columns (cold songs: empty)."""
    order = data.order()
    if order is None:
        return None
    return sp.csr_array((order.data, order.indices, order.indptr), shape=view.matrix.shape)
