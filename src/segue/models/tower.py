"""Query towers: neural playlist encoders that score songs by an inner product.

Why one base class: the temporal CNN (:mod:`segue.models.tcn`) and the YouTube-style candidate
generator (:mod:`segue.models.youtube_dnn`) differ only in how a playlist becomes a vector and in
their loss. Both read a playlist as its seed songs in order, its title words (and Melon tags:
the non-track columns of its row) and, where the playlists carry dates, its age; both learn an
item table, so a query is scored over the whole catalogue by one matrix product
(``query_vectors @ item_vectors.T``), and both train on the same question: from the first ``k``
songs of a training playlist (``k`` drawn afresh per playlist and mini-batch), find songs that
come after ``k``.

Shared here: the training loop (seeded, a validation holdout carved from the training rows
whose last songs are hidden, early stopping on its NDCG through
:func:`segue.nn.training.fit_epochs`), turning a batch of rows (and their playlists, when the
caller has them) into the towers' inputs, retrieval through the model API's hook, and the
learned state (the network's weights as one safetensors file, the network rebuilt after load).

Song order at query time comes from the query playlists (``needs_playlists``); rows given
without playlists (a listen history, a known playlist recommended by id) are read in column
order, so such a query loses the order signal but is still scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender, FitData, QueryBatch, Target, TopK
from segue.models.topk import topk
from segue.nn.holdout import Holdout, carve_holdout, holdout_ndcg
from segue.nn.optim import MixedAdam
from segue.nn.params import check_params, is_number
from segue.nn.runtime import check_device, resolve_device, seeded, torch
from segue.nn.sequences import Ragged, column_lists, order_lists, playlist_lists
from segue.nn.tensors import load_weights, weights_of
from segue.nn.training import fit_epochs

__all__ = ["Queries", "QueryTower"]

_TITLE_KINDS = (ItemKind.TITLE_WORD, ItemKind.TITLE)


@dataclass(frozen=True)
class Queries:
    """A batch of playlist queries as the towers read them.

    Attributes
    ----------
    window
        ``(n, L)`` int64: the last ``L`` seed songs in order, left-padded with -1 (``L = 0`` for
        towers that read no order).
    seeds, titles, tags
        Every seed song; the title-word and whole-title columns; the tag columns.
    age
        ``(n,)`` float32 age of the playlist in years (0 at query time, as in the YouTube
        paper's "example age").
    """

    window: np.ndarray
    seeds: Ragged
    titles: Ragged
    tags: Ragged
    age: np.ndarray

    def tensors(self, dev: Any) -> dict[str, Any]:
        """The batch as torch tensors on ``dev`` (bags as flat values and offsets)."""
        t = torch()

        def bag(r: Ragged) -> tuple[Any, Any]:
            return (
                t.from_numpy(r.values.astype(np.int64)).to(dev),
                t.from_numpy(r.indptr[:-1].astype(np.int64)).to(dev),
            )

        return {
            "window": t.from_numpy(self.window).to(dev),
            "seeds": bag(self.seeds),
            "titles": bag(self.titles),
            "tags": bag(self.tags),
            "length": t.from_numpy(self.seeds.lengths().astype(np.float32)).to(dev),
            "age": t.from_numpy(self.age.astype(np.float32)).to(dev),
        }


class QueryTower(BaseRecommender):
    """Base of the inner-product playlist encoders (module docstring); not registered itself.

    Subclasses set the hyper-parameters (``dim``, ``lr``, ``epochs``, ``patience``,
    ``batch_size``, ``validation_rows``, ``seed``, ``device`` at least) and implement
    :meth:`_network` (a module with ``query(inputs) -> (n, D)``, ``items() -> (n_items, D)``,
    a ``bias`` embedding of one value per song, started at log popularity, and
    ``item_tables()``, the song tables ``init="svd"`` starts) and :meth:`_loss`.
    """

    needs_playlists = True
    libraries = ("torch", "safetensors")
    required_state = ("weights_",)
    unsaved_state = frozenset({"epochs_"})
    #: name in the epoch lines
    label: ClassVar[str] = "tower"
    #: seed songs in the ordered window (0: the tower reads no order)
    window_length: ClassVar[str | None] = None

    # parameters -----------------------------------------------------------------------------
    _int_params: ClassVar[tuple[tuple[str, int], ...]] = (
        ("dim", 1),
        ("epochs", 1),
        ("patience", 1),
        ("batch_size", 2),
        ("samples", 1),
        ("validation_rows", 0),
        ("seed", 0),
    )
    _positive_params: ClassVar[tuple[str, ...]] = ("lr",)
    _nonnegative_params: ClassVar[tuple[str, ...]] = ("weight_decay",)

    def _validate_params(self) -> None:
        check_params(
            self,
            ints=dict(self._int_params),
            positive=self._positive_params,
            non_negative=self._nonnegative_params,
        )
        if self.init not in ("svd", "random"):
            raise ParameterError(f"init must be 'svd' or 'random', got {self.init!r}")
        if not (is_number(self.dropout) and 0 <= self.dropout < 1):
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout!r}")
        check_device(self.device)

    def _window(self) -> int:
        return 0 if self.window_length is None else int(getattr(self, self.window_length))

    # subclass hooks -------------------------------------------------------------------------
    def _network(self, n_items: int) -> Any:
        """A fresh torch module for ``n_items`` columns (see the class docstring)."""
        raise NotImplementedError

    def _loss(
        self,
        net: Any,
        inputs: dict[str, Any],
        after: Ragged,
        rng: np.random.Generator,
    ) -> Any:
        """The mini-batch loss: queries ``inputs``, ``after[i]`` the songs after row i's seeds."""
        raise NotImplementedError

    # inputs ---------------------------------------------------------------------------------
    def _kinds(self, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boolean masks over the columns: tracks, title columns, tag columns."""
        kinds = self.items_.kinds if hasattr(self, "items_") else self._fit_kinds
        if len(kinds) != n_items:
            raise ParameterError(f"{len(kinds)} column kinds for {n_items} columns")
        return (
            kinds == ItemKind.TRACK,
            np.isin(kinds, [int(k) for k in _TITLE_KINDS]),
            kinds == ItemKind.TAG,
        )

    def _queries(self, seeds: Ragged, rows: sp.csr_array, age: np.ndarray | None = None) -> Queries:
        """Inputs of a batch: ordered seeds, and the title and tag columns of ``rows``."""
        _, title, tag = self._kinds(rows.shape[1])
        return Queries(
            window=seeds.windows(self._window()),
            seeds=seeds,
            titles=column_lists(rows, title),
            tags=column_lists(rows, tag),
            age=np.zeros(len(seeds), dtype=np.float32) if age is None else age,
        )

    def ordered_seeds(self, rows: sp.csr_array, playlists: Playlists | None = None) -> Ragged:
        """The track columns of ``rows`` in playlist order (column order without playlists)."""
        track, _, _ = self._kinds(rows.shape[1])
        if playlists is not None and playlists.n_playlists == rows.shape[0]:
            found = playlist_lists(playlists, self.items_, track)
            # a playlist whose known songs are not its row's (a caller's mismatch) is read
            # from its row, so the scores never use songs the row does not hold
            same = found.lengths() == np.diff(sp.csr_array(rows[:, np.flatnonzero(track)]).indptr)
            if same.all():
                return found
        return column_lists(rows, track)

    # fitting --------------------------------------------------------------------------------
    def _fit(self, data: FitData) -> None:
        dev = resolve_device(self.device)
        matrix = sp.csr_array(data.matrix, dtype=np.float32, copy=True)
        matrix.data[:] = 1.0
        self._fit_kinds = data.train.items.kinds
        n_items = matrix.shape[1]
        track, _, _ = self._kinds(n_items)
        order = data.order()
        rng = np.random.default_rng(self.seed)
        with seeded(self.seed, dev) as gen:
            holdout = self._holdout(data, matrix, order)
            train = holdout.train if holdout is not None else matrix
            if order is not None:
                order = sp.csr_array(order.multiply(train))  # hidden songs leave the order
                lists = order_lists(order, track)
            else:
                lists = column_lists(train, track)
            queries = self._queries(lists, train, self._ages(data))
            self._popularity = np.bincount(lists.values, minlength=n_items).astype(np.float64)
            self._track_columns = np.flatnonzero(track)
            net = self._network(n_items)
            with torch().no_grad():  # the song bias starts at log popularity: the prior
                prior = np.log((self._popularity + 1.0) / (len(lists) + 1.0))
                net.bias.weight[:, 0] = torch().from_numpy(prior.astype(np.float32))
                if self.init == "svd":
                    vectors = self._svd_vectors(train)
                    for table in net.item_tables():
                        table.weight.copy_(torch().from_numpy(vectors))
            net = net.to(dev)
            self._net, self._dev, self._item_cache = net, dev, None
            optimizer = MixedAdam(net, self.lr, self.weight_decay)
            context = (queries.titles.lengths() + queries.tags.lengths()) > 0
            n_seeds = lists.lengths()
            # a row trains when some song can follow its first k seeds (k >= 1, or k = 0 for a
            # row with a title or tags: the cold-start question)
            eligible = np.flatnonzero((n_seeds >= 2) | ((n_seeds >= 1) & context))
            if not len(eligible):
                raise ParameterError(
                    f"{type(self).__name__} needs rows with two or more songs to train on"
                )

            def run_epoch(_: int) -> float:
                return self._train_epoch(net, optimizer, queries, eligible, context, gen, rng)

            validate = None
            if holdout is not None:

                def validate() -> float:
                    return self._validate(holdout, lists)

            self.epochs_ = fit_epochs(
                model=self.label,
                epochs=self.epochs,
                run_epoch=run_epoch,
                validate=validate,
                patience=self.patience,
                snapshot=lambda: weights_of(net),
                restore=lambda saved: load_weights(net, saved),
            )
        net.eval()
        self.weights_ = weights_of(net)
        self._net_weights = self.weights_
        self.epochs_trained_ = len(self.epochs_)
        self.seconds_per_epoch_ = float(np.mean([e.seconds for e in self.epochs_]))
        del self._fit_kinds

    def _svd_vectors(self, train: sp.csr_array) -> np.ndarray:
        """``(n_items, dim)`` starting song vectors: the truncated SVD of the training rows.

        Why: a few thousand playlists give a network few steps per song; starting from the
        co-occurrence structure (PureSVD's item factors, scaled to the random start's norm)
        lets training refine it instead of finding it.
        """
        from scipy.sparse.linalg import svds

        k = min(self.dim, min(train.shape) - 1)
        out = np.zeros((train.shape[1], self.dim), dtype=np.float32)
        if k < 1:
            return out
        _, s, vt = svds(sp.csr_array(train, dtype=np.float64), k=k, random_state=self.seed)
        vectors = vt.T * np.sqrt(s)
        norms = np.linalg.norm(vectors, axis=1)
        scale = 0.1 * np.sqrt(self.dim) / max(float(norms[norms > 0].mean()), 1e-12)
        out[:, :k] = vectors * scale
        return out

    def _holdout(
        self, data: FitData, matrix: sp.csr_array, order: sp.csr_array | None
    ) -> Holdout | None:
        """Validation questions from the training rows: given ``valid``, else carved."""
        if not self.validation_rows:
            return None
        valid = data.valid
        if valid is not None and valid.users == data.train.users:
            answers = sp.csr_array(valid.matrix)
            rows = np.flatnonzero(np.diff(answers.indptr) > 0)[: self.validation_rows]
            if len(rows) >= 10:
                return Holdout(matrix, rows.astype(np.int32), sp.csr_array(answers[rows]))
        return carve_holdout(matrix, n_rows=self.validation_rows, seed=self.seed, order=order)

    def _ages(self, data: FitData) -> np.ndarray | None:
        """Each training playlist's age in years before the newest one (0 when undated)."""
        playlists = data.playlists
        dates = playlists.dates() if playlists is not None else None
        if dates is None or len(dates) != data.matrix.shape[0]:
            return None
        seconds = dates.astype("datetime64[s]").astype(np.float64)
        known = ~np.isnat(dates)
        newest = seconds[known].max()
        return np.where(known, (newest - seconds) / (365.25 * 86400), 0.0).astype(np.float32)

    def _train_epoch(
        self,
        net: Any,
        optimizer: Any,
        queries: Queries,
        eligible: np.ndarray,
        context: np.ndarray,
        gen: Any,
        rng: np.random.Generator,
    ) -> float:
        t = torch()
        net.train()
        shuffled = np.concatenate(  # each row draws ``samples`` prediction points per epoch
            [
                eligible[t.randperm(len(eligible), generator=gen).numpy()]
                for _ in range(self.samples)
            ]
        )
        total, batches = 0.0, 0
        for start in range(0, len(shuffled), self.batch_size):
            rows = shuffled[start : start + self.batch_size]
            n_seeds = queries.seeds.lengths()[rows]
            low = np.where(context[rows], 0, 1)
            k = low + np.floor(rng.random(len(rows)) * (n_seeds - low)).astype(np.int64)
            seeds = queries.seeds.take(rows, k)
            full = queries.seeds.take(rows)
            slot = np.arange(len(full.values)) - np.repeat(full.indptr[:-1], n_seeds)
            after_k = slot >= np.repeat(k, n_seeds)  # the songs that come after the k seeds
            indptr = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(n_seeds - k, out=indptr[1:])
            after = Ragged(indptr, full.values[after_k])
            batch = Queries(
                window=seeds.windows(self._window()),
                seeds=seeds,
                titles=queries.titles.take(rows),
                tags=queries.tags.take(rows),
                age=queries.age[rows],
            )
            loss = self._loss(net, batch.tensors(self._dev), after, rng)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        return total / max(1, batches)

    def _validate(self, holdout: Holdout, lists: Ragged) -> float:
        net = self._net
        track, _, _ = self._kinds(holdout.train.shape[1])
        net.eval()
        try:

            def score(rows: IdxArray, queries: sp.csr_array) -> ScoreMatrix:
                scores = self._scores(net, self._queries(lists.take(rows), queries))
                scores[:, ~track] = -np.inf  # the questions ask for songs, as the playlists do
                return scores

            return holdout_ndcg(score, holdout)
        finally:
            net.train()

    # inference ------------------------------------------------------------------------------
    def network(self) -> Any:
        """The live network (rebuilt from ``weights_`` after a load or a weight change)."""
        self.check_fitted()
        net = self.__dict__.get("_net")
        if net is None or self.__dict__.get("_net_weights") is not self.weights_:
            self._dev = resolve_device(self.device)
            net = self._network(len(self.items_))
            load_weights(net, self.weights_)
            net = net.to(self._dev)
            self._net, self._net_weights = net, self.weights_
            self._item_cache = None
        net.eval()
        return net

    def restore_state(self, state: dict[str, Any]) -> None:
        """Set the loaded state; mismatched weights are refused here, not at the first query."""
        super().restore_state(state)
        self._net = None
        self.network()

    def item_vectors(self) -> np.ndarray:
        """``(n_items, D)`` float32: a song's score is ``query_vector . item_vector``."""
        net = self.network()
        cache = self.__dict__.get("_item_cache")
        if cache is None or cache[0] is not net:
            with torch().no_grad():
                vectors = np.ascontiguousarray(net.items().to("cpu").numpy(), dtype=np.float32)
            cache = (net, vectors)
            self._item_cache = cache
        return cache[1]

    def query_vectors(self, rows: sp.csr_array, playlists: Playlists | None = None) -> np.ndarray:
        """``(n, D)`` float32 query vectors of rows over the model's items (and playlists)."""
        rows = sp.csr_array(rows)
        queries = self._queries(self.ordered_seeds(rows, playlists), rows)
        net = self.network()
        with torch().no_grad():
            return np.asarray(net.query(queries.tensors(self._dev)).to("cpu").numpy(), np.float32)

    def _scores(self, net: Any, queries: Queries) -> ScoreMatrix:
        with torch().no_grad():
            q = net.query(queries.tensors(self._dev))
            return (q @ net.items().T).to("cpu").numpy().astype(np.float32)

    def probabilities(self, logits: np.ndarray) -> ScoreMatrix:
        """The model's probabilities from inner products ``(n, n_items)``, in place.

        Why not the raw products: the order is the same, and a probability's relative error is
        the product's absolute one, so near-zero products give no noisy scores.
        """
        raise NotImplementedError

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        return self.probabilities(self.query_vectors(history) @ self.item_vectors().T)

    def _retrieve(self, batch: QueryBatch, targets: Mapping[str, Target]) -> dict[str, TopK]:
        """Top-k by inner product, the seeds read in the order of ``batch.playlists``."""
        self.check_fitted()
        rows = batch.rows
        scores = self.probabilities(
            self.query_vectors(rows, batch.playlists) @ self.item_vectors().T
        )
        empty = np.diff(rows.indptr) == 0
        if empty.any():
            scores[empty] = self.fallback_scores_
        names = list(targets)
        return {
            name: topk(
                scores,
                targets[name].k,
                exclude=batch.mask,
                allow=targets[name].allow,
                copy=name != names[-1],
            )
            for name in names
        }
