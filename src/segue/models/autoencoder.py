"""Deep autoencoder for collaborative filtering (Kuchaiev & Ginsburg, 2017), two orientations.

``orientation="playlist"`` is the usual CF autoencoder: a row (a playlist's or a user's items,
tags and title words included where the model has them) is encoded through SELU layers to a
code, dropped out (the Melon solutions used a drop probability of 0.8), and decoded back to every
item; the output is the row's scores, so fold-in of an unseen playlist is one forward pass.

``orientation="song"`` turns the matrix around, as the Kakao Arena Melon write-ups did: a row is
a song (any column: tracks, tags, title words), its features the training playlists that hold it,
and its code is the song's embedding. A query is scored by the cosine neighbours of its songs'
embeddings, summed (an item-kNN on learned embeddings: the ``n_neighbors`` best neighbours per
song, found with faiss and kept as a sparse matrix, so fold-in is one sparse product). Tags
come from the nearest training playlists instead (cosine over the tracks), as in the write-up.

Loss: masked MSE over the observed entries plus a weighted plain MSE over all entries. Masked
MSE alone is minimised by predicting 1 everywhere; the plain term (weight ``plain_weight``)
pulls unobserved entries to 0. Optional dense re-feeding (Kuchaiev & Ginsburg) adds a second
update on the output fed back as input. Training uses Adam on mini-batches of sparse rows and
stops early on NDCG@100 of continuation questions carved from training rows
(:mod:`segue.nn.holdout`); the weights of the best epoch are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from segue._extras import require
from segue._types import IdxArray, ScoreMatrix
from segue.data.kinds import ItemKind
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender, FitData
from segue.models.registry import register
from segue.nn.holdout import Holdout, carve_holdout, holdout_ndcg
from segue.nn.params import check_params, check_sizes, is_number
from segue.nn.runtime import check_device, resolve_device, seeded, torch
from segue.nn.tensors import dense_rows, load_weights, sparse_rows, weights_of
from segue.nn.training import fit_epochs

__all__ = ["Autoencoder"]

_OUTPUT_CHUNK = 1 << 15  # output columns computed at once when scoring
_SEARCH_BLOCK = 4096  # songs per faiss neighbour search


def _network(n_in: int, layers: Sequence[int], dropout: float, tied: bool) -> Any:
    """The encoder/decoder as a torch module (built here so torch is imported only on use)."""
    t = torch()
    nn = t.nn
    functional = t.nn.functional

    class DeepAutoencoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            sizes = [n_in, *layers]
            self.encoder = nn.ModuleList(
                nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            )
            back = sizes[::-1]
            if tied:  # decoder layer i uses encoder layer -i's weight, transposed
                self.decoder_bias = nn.ParameterList(nn.Parameter(t.zeros(b)) for b in back[1:])
            else:
                self.decoder = nn.ModuleList(
                    nn.Linear(a, b) for a, b in zip(back[:-1], back[1:], strict=True)
                )
            self.drop = nn.Dropout(dropout)
            self.n_out = n_in

        def encode(self, x: Any) -> Any:
            first = self.encoder[0]
            if x.is_sparse:
                h = t.sparse.mm(x, first.weight.t()) + first.bias
            else:
                h = functional.linear(x, first.weight, first.bias)
            h = functional.selu(h)
            for layer in self.encoder[1:]:
                h = functional.selu(layer(h))
            return h

        def _decoder_layer(self, i: int) -> tuple[Any, Any]:
            if tied:
                return self.encoder[len(self.encoder) - 1 - i].weight.t(), self.decoder_bias[i]
            return self.decoder[i].weight, self.decoder[i].bias

        def decode_hidden(self, z: Any) -> Any:
            """Every decoder layer but the output one."""
            h = z
            for i in range(len(self.encoder) - 1):
                weight, bias = self._decoder_layer(i)
                h = functional.selu(functional.linear(h, weight, bias))
            return h

        def output(self, h: Any, start: int = 0, stop: int | None = None) -> Any:
            """The linear output layer, for columns ``start:stop`` only (chunked scoring)."""
            weight, bias = self._decoder_layer(len(self.encoder) - 1)
            return functional.linear(h, weight[start:stop], bias[start:stop])

        def forward(self, x: Any) -> Any:
            return self.output(self.decode_hidden(self.drop(self.encode(x))))

    return DeepAutoencoder()


@register("autoencoder")
class Autoencoder(BaseRecommender):
    """Deep CF autoencoder (SELU, code dropout, masked + plain MSE), by playlist or by song.

    Parameters
    ----------
    orientation
        ``"playlist"``: rows are playlists (or users), decoded to item scores. ``"song"``: rows
        are songs, encoded to embeddings; queries are scored by the songs' cosine neighbours.
    layers
        Encoder sizes after the input, the last one the code (the decoder mirrors them).
    dropout
        Drop probability on the code (0.8 in the Melon solutions).
    tied
        Decoder weights are the transposed encoder weights (default: independent).
    refeed
        Dense re-feeding: a second update per batch with the output as input and target.
    masked_weight, plain_weight
        Weights of the masked MSE (observed entries) and of the plain MSE (all entries).
    lr, weight_decay
        Adam's learning rate and L2 penalty.
    epochs, patience
        Most epochs, and epochs without a better validation NDCG before stopping.
    batch_size
        Rows per mini-batch.
    n_neighbors
        ``song`` orientation: neighbours kept per song (and training playlists per query for
        tags).
    validation_rows
        Training rows carved out as validation questions for early stopping (0: none, train
        ``epochs`` epochs).
    seed
        Seeds initialisation, dropout, shuffling and the validation carve.
    device
        ``"auto"`` (a GPU when torch sees one), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    libraries = ("torch", "faiss-cpu")
    required_state = ("weights_",)
    state_shapes = {"neighbors_": ("items", "items")}

    def __init__(
        self,
        orientation: Literal["playlist", "song"] = "playlist",
        layers: Sequence[int] = (256, 128),
        dropout: float = 0.8,
        tied: bool = False,
        refeed: bool = False,
        masked_weight: float = 1.0,
        plain_weight: float = 50.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 30,
        patience: int = 3,
        batch_size: int = 128,
        n_neighbors: int = 100,
        validation_rows: int = 1000,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.orientation = orientation
        self.layers = layers
        self.dropout = dropout
        self.tied = tied
        self.refeed = refeed
        self.masked_weight = masked_weight
        self.plain_weight = plain_weight
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.n_neighbors = n_neighbors
        self.validation_rows = validation_rows
        self.seed = seed
        self.device = device

    # parameters -----------------------------------------------------------------------------
    def _validate_params(self) -> None:
        if self.orientation not in ("playlist", "song"):
            raise ParameterError(
                f"orientation must be 'playlist' or 'song', got {self.orientation!r}"
            )
        check_sizes("layers", self.layers)
        if not (is_number(self.dropout) and 0 <= self.dropout < 1):
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout!r}")
        check_params(
            self,
            ints={
                "epochs": 1,
                "patience": 1,
                "batch_size": 1,
                "n_neighbors": 1,
                "validation_rows": 0,
                "seed": 0,
            },
            positive=("lr",),
            non_negative=("masked_weight", "plain_weight", "weight_decay"),
        )
        if self.masked_weight == 0 and self.plain_weight == 0:
            raise ParameterError("masked_weight and plain_weight cannot both be 0")
        for name in ("tied", "refeed"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} must be true or false, got {getattr(self, name)!r}")
        check_device(self.device)

    # fitting --------------------------------------------------------------------------------
    def _fit(self, data: FitData) -> None:
        dev = resolve_device(self.device)
        matrix = sp.csr_array(data.matrix, dtype=np.float32)
        matrix.data = np.ones_like(matrix.data)
        with seeded(self.seed, dev) as gen:
            holdout = None
            if self.validation_rows:
                holdout = carve_holdout(
                    matrix, n_rows=self.validation_rows, seed=self.seed, order=data.order()
                )
            train = holdout.train if holdout is not None else matrix
            rows = sp.csr_array(train.T) if self.orientation == "song" else train
            net = _network(rows.shape[1], list(self.layers), self.dropout, self.tied).to(dev)
            self._net, self._dev = net, dev
            optimizer = torch().optim.Adam(
                net.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )

            def run_epoch(_: int) -> float:
                return self._train_epoch(net, optimizer, rows, gen)

            validate = None
            if holdout is not None:
                tracks = data.train.items.columns(ItemKind.TRACK)

                def validate() -> float:
                    return self._validate(holdout, rows, tracks)

            self.epochs_ = fit_epochs(
                model=f"autoencoder[{self.orientation}]",
                epochs=self.epochs,
                run_epoch=run_epoch,
                validate=validate,
                patience=self.patience,
                snapshot=lambda: weights_of(net),
                restore=lambda saved: load_weights(net, saved),
            )
        net.eval()
        self.weights_ = weights_of(net)
        self.epochs_trained_ = len(self.epochs_)
        self.seconds_per_epoch_ = float(np.mean([e.seconds for e in self.epochs_]))
        if self.orientation == "song":
            # the neighbours come from the songs' full rows: the held-out entries were only
            # needed to choose the epoch
            self.neighbors_ = self._song_neighbors(self._embeddings(sp.csr_array(matrix.T)))

    unsaved_state = frozenset({"epochs_"})

    def _train_epoch(self, net: Any, optimizer: Any, rows: sp.csr_array, gen: Any) -> float:
        t = torch()
        net.train()
        n = rows.shape[0]
        order = t.randperm(n, generator=gen).numpy()
        total, batches = 0.0, 0
        for start in range(0, n, self.batch_size):
            batch = sp.csr_array(rows[order[start : start + self.batch_size]])
            if batch.nnz == 0:
                continue
            x = sparse_rows(batch, self._dev, binary=True)
            y = dense_rows(batch, self._dev, binary=True)
            out = net(x)
            loss = self._loss(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if self.refeed:
                target = out.detach()
                again = net(target)
                refed = self.plain_weight * ((again - target) ** 2).mean()
                optimizer.zero_grad()
                refed.backward()
                optimizer.step()
            total += float(loss.detach())
            batches += 1
        return total / max(1, batches)

    def _loss(self, out: Any, y: Any) -> Any:
        err = (out - y) ** 2
        masked = (err * y).sum() / y.sum().clamp(min=1.0)
        return self.masked_weight * masked + self.plain_weight * err.mean()

    def _validate(self, holdout: Holdout, rows: sp.csr_array, tracks: IdxArray) -> float:
        if self.orientation == "playlist":
            return holdout_ndcg(lambda _, q: self._decode_rows(q), holdout, allow=tracks)
        unit = self._embeddings(rows)
        return holdout_ndcg(lambda _, q: (q @ unit) @ unit.T, holdout, allow=tracks)

    # the network at inference ---------------------------------------------------------------
    def _network(self) -> Any:
        """The live network, rebuilt from the saved weights after a load."""
        net = getattr(self, "_net", None)
        if net is None:
            self._dev = resolve_device(self.device)
            n_in = self.weights_["encoder.0.weight"].shape[1]
            net = _network(n_in, list(self.layers), self.dropout, self.tied)
            load_weights(net, self.weights_)
            net = net.to(self._dev)
            self._net = net
        net.eval()
        return net

    def restore_state(self, state: dict[str, Any]) -> None:
        """Set the loaded state and rebuild the network (mismatched weights are refused)."""
        super().restore_state(state)
        self._net = None
        self._network()  # refuse mismatched weights at load time, not at the first query

    def _decode_rows(self, rows: sp.csr_array) -> ScoreMatrix:
        """Playlist orientation: the network's output for binary rows, in column chunks."""
        t = torch()
        net = self._network()
        n_out = net.n_out
        out = np.empty((rows.shape[0], n_out), dtype=np.float32)
        with t.no_grad():
            h = net.decode_hidden(net.encode(sparse_rows(rows, self._dev, binary=True)))
            for start in range(0, n_out, _OUTPUT_CHUNK):
                stop = min(n_out, start + _OUTPUT_CHUNK)
                out[:, start:stop] = net.output(h, start, stop).cpu().numpy()
        return out

    def _embeddings(self, rows: sp.csr_array) -> np.ndarray:
        """Song orientation: unit-length codes of the songs' rows (playlists holding them)."""
        t = torch()
        net = self._network()
        parts = []
        with t.no_grad():
            for start in range(0, rows.shape[0], 4096):
                batch = sp.csr_array(rows[start : start + 4096])
                parts.append(net.encode(sparse_rows(batch, self._dev, binary=True)).cpu().numpy())
        codes = np.concatenate(parts).astype(np.float32)
        norms = np.linalg.norm(codes, axis=1, keepdims=True)
        return codes / np.maximum(norms, 1e-12)

    def _song_neighbors(self, unit: np.ndarray) -> sp.csr_array:
        """Each song's ``n_neighbors`` best cosine neighbours (itself left out), as CSR."""
        faiss = require("faiss", "the song autoencoder's neighbours")
        n, dim = unit.shape
        k = min(self.n_neighbors + 1, n)
        index = faiss.IndexFlatIP(dim)
        index.add(unit)
        sims = np.empty((n, k), dtype=np.float32)
        ids = np.empty((n, k), dtype=np.int64)
        for start in range(0, n, _SEARCH_BLOCK):
            stop = min(n, start + _SEARCH_BLOCK)
            sims[start:stop], ids[start:stop] = index.search(unit[start:stop], k)
        rows = np.repeat(np.arange(n), k)
        keep = (ids.ravel() >= 0) & (ids.ravel() != rows) & (sims.ravel() > 0)
        out = sp.csr_array(
            (sims.ravel()[keep], (rows[keep], ids.ravel()[keep])), shape=(n, n), dtype=np.float32
        )
        out.sort_indices()
        return out

    # scoring --------------------------------------------------------------------------------
    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        rows = sp.csr_array(history, dtype=np.float32)
        rows.data = np.ones_like(rows.data)
        if self.orientation == "playlist":
            return self._decode_rows(rows)
        scores = np.asarray((rows @ self.neighbors_).toarray(), dtype=np.float32)
        tags = self.items_.columns(ItemKind.TAG)
        if len(tags):
            scores[:, tags] = self._tags_from_playlists(rows, tags)
        return scores

    def _tags_from_playlists(self, rows: sp.csr_array, tags: IdxArray) -> ScoreMatrix:
        """Tag scores from the ``n_neighbors`` training playlists nearest over the tracks."""
        tracks = self.items_.columns(ItemKind.TRACK)
        cached = getattr(self, "_playlist_index", None)
        if cached is None or cached[0] is not self.history_:
            train = sp.csr_array(self.history_, dtype=np.float32)
            train.data = np.ones_like(train.data)
            own = sp.csr_array(train[:, tracks])
            norms = np.sqrt(np.asarray(own.sum(axis=1)).ravel())
            own = sp.csr_array(sp.diags(1.0 / np.maximum(norms, 1.0)) @ own)
            cached = (self.history_, sp.csr_array(own.T), sp.csr_array(train[:, tags]))
            self._playlist_index = cached
        _, own_t, train_tags = cached
        query = sp.csr_array(rows[:, tracks])
        sims = np.asarray((query @ own_t).toarray(), dtype=np.float32)
        k = min(self.n_neighbors, sims.shape[1])
        if k < sims.shape[1]:
            cut = np.argpartition(-sims, k - 1, axis=1)[:, k:]
            np.put_along_axis(sims, cut, 0.0, axis=1)
        return np.asarray((sp.csr_array(sims) @ train_tags).toarray(), dtype=np.float32)
