"""Temporal CNN playlist encoder (Volkovs et al., RecSys Challenge 2018 winner, Layer 6).

Why: a playlist's songs come in an order that a set model (kNN, WRMF) throws away; the winning
challenge entry retrieved with WRMF *and* a convolutional network over the songs in order. The
embeddings of the last ``window`` seed songs, in playlist order, pass through ``blocks`` gated
linear unit convolutions (``x + A * sigmoid(B)``, kernel ``kernel``, residual), are max-pooled
over time and, with the average embedding of the title words, mapped by a fully connected layer
to a playlist vector ``u`` in the song-embedding space: ``P(song j | playlist) =
sigmoid(u . v_j + b_j)``, ``v_j`` the song's embedding (the same table the convolutions read)
and ``b_j`` a learned song bias (the paper's form plus a bias: without it, popularity has to be
carried by the embeddings, which 6,000 playlists cannot teach; it rides as one more dimension,
``[u, 1] . [v_j, b_j]``, so retrieval stays one inner product).

Training draws a prediction point ``k`` per playlist in every mini-batch and pushes up
``positives`` songs drawn from those after ``k`` (any of them: the paper found that training on
the next song only hurts) against ``negatives`` songs drawn from the catalogue (uniformly,
or by popularity^``sample_power``; binary cross-entropy). A playlist with a title may draw
``k = 0``, so title-only queries get a trained vector. Retrieval is a dense inner product over
the catalogue (:class:`~segue.models.tower.QueryTower`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segue.exceptions import ParameterError
from segue.models.registry import register
from segue.models.tower import QueryTower
from segue.nn.runtime import torch
from segue.nn.sequences import Ragged

__all__ = ["TCN"]


def _network(n_items: int, dim: int, kernel: int, blocks: int, dropout: float) -> Any:
    t = torch()
    nn, functional = t.nn, t.nn.functional

    class TemporalCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(n_items, dim, sparse=True)  # rows met in a batch only
            nn.init.normal_(self.emb.weight, std=0.1)
            self.convs = nn.ModuleList(nn.Conv1d(dim, 2 * dim, kernel) for _ in range(blocks))
            self.bias = nn.Embedding(n_items, 1, sparse=True)
            nn.init.zeros_(self.bias.weight)
            self.fc = nn.Linear(2 * dim, dim)
            self.drop = nn.Dropout(dropout)

        def query(self, x: dict[str, Any]) -> Any:
            window = x["window"]
            mask = window >= 0
            h = (self.emb(window.clamp(min=0)) * mask[..., None]).transpose(1, 2)  # (n, d, L)
            keep = mask[:, None, :].to(h.dtype)
            left = (kernel - 1) // 2
            for conv in self.convs:  # "same" padding: both ends of the window are visible
                a, b = conv(functional.pad(h, (left, kernel - 1 - left))).chunk(2, dim=1)
                h = (h + a * t.sigmoid(b)) * keep  # padding stays zero: rows never mix
            pooled = h.masked_fill(~mask[:, None, :], -t.inf).max(dim=2).values
            pooled = t.where(mask.any(dim=1, keepdim=True), pooled, t.zeros_like(pooled))
            values, offsets = x["titles"]
            title = functional.embedding_bag(
                values, self.emb.weight, offsets, mode="mean", sparse=True
            )
            u = self.fc(self.drop(t.cat([pooled, title], dim=1)))
            return t.cat([u, t.ones_like(u[:, :1])], dim=1)

        def item_tables(self) -> list[Any]:
            return [self.emb]

        def items(self) -> Any:
            return t.cat([self.emb.weight, self.bias.weight], dim=1)

    return TemporalCNN()


@register("tcn")
class TCN(QueryTower):
    """Temporal convolutional playlist encoder (module docstring).

    Parameters
    ----------
    dim
        Length of the song embeddings and of the playlist vector.
    kernel
        Width of the convolutions (songs per window).
    blocks
        Number of gated convolution blocks (each with a residual connection).
    window
        Seed songs read, the last ones in playlist order.
    positives, negatives
        Songs after the prediction point, and drawn songs, per playlist and step.
    sample_power
        Negatives are drawn with probability proportional to popularity to this power (0:
        uniformly over the catalogue).
    samples
        Prediction points drawn per playlist and epoch (an epoch is ``samples`` passes).
    init
        ``"svd"``: the song embeddings start from the truncated SVD of the training rows
        (scaled); ``"random"``: from N(0, 0.1).
    dropout
        Dropout before the fully connected layer.
    lr, weight_decay
        Adam's learning rate and L2 penalty.
    epochs, patience
        At most ``epochs`` passes; stop after ``patience`` without a better validation NDCG.
    batch_size
        Playlists per mini-batch.
    validation_rows
        Training playlists whose last 20% of songs are hidden for early stopping (0: none).
    seed
        Seed of initialisation and sampling (same seed and thread count: same model).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    label = "tcn"
    _nonnegative_params = (*QueryTower._nonnegative_params, "sample_power")
    window_length = "window"
    _int_params = (
        *QueryTower._int_params,
        ("kernel", 1),
        ("blocks", 0),
        ("window", 1),
        ("positives", 1),
        ("negatives", 1),
    )

    def __init__(
        self,
        dim: int = 64,
        kernel: int = 3,
        blocks: int = 3,
        window: int = 50,
        positives: int = 4,
        negatives: int = 32,
        sample_power: float = 0.0,
        samples: int = 1,
        init: str = "svd",
        dropout: float = 0.1,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        epochs: int = 30,
        patience: int = 3,
        batch_size: int = 128,
        validation_rows: int = 1000,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.dim = dim
        self.kernel = kernel
        self.blocks = blocks
        self.window = window
        self.positives = positives
        self.negatives = negatives
        self.sample_power = sample_power
        self.samples = samples
        self.init = init
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.validation_rows = validation_rows
        self.seed = seed
        self.device = device

    def _validate_params(self) -> None:
        super()._validate_params()  # kernel and window are positive ints from here on
        if self.kernel > 2 * self.window:
            raise ParameterError(
                f"kernel ({self.kernel}) is wider than twice the window ({self.window})"
            )

    def _network(self, n_items: int) -> Any:
        return _network(n_items, self.dim, self.kernel, self.blocks, self.dropout)

    def _negative_sampling(self) -> tuple[np.ndarray, np.ndarray]:
        """Track columns and their probabilities of being drawn as negatives."""
        cached = self.__dict__.get("_negatives_cache")
        if cached is None or cached[0] is not self._popularity:
            columns = self._track_columns
            weight = (self._popularity[columns] + 1.0) ** self.sample_power
            cached = (self._popularity, columns, weight / weight.sum())
            self._negatives_cache = cached
        return cached[1], cached[2]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """``sigmoid(u . v_j + b_j)``: the probability that song j belongs to the playlist."""
        np.negative(logits, out=logits)
        with np.errstate(over="ignore"):  # exp(-x) = inf: a probability of 0, as it should
            np.exp(logits, out=logits)
        logits += 1.0
        return np.reciprocal(logits, out=logits)

    def _loss(
        self, net: Any, inputs: dict[str, Any], after: Ragged, rng: np.random.Generator
    ) -> Any:
        t = torch()
        functional = t.nn.functional
        n = len(after)
        lengths = after.lengths()
        pick = np.floor(rng.random((n, self.positives)) * lengths[:, None]).astype(np.int64)
        pos = after.values[after.indptr[:-1, None] + pick]
        columns, p = self._negative_sampling()
        neg = columns[rng.choice(len(columns), size=(n, self.negatives), p=p)]
        u = net.query(inputs)[:, :-1]

        def logits(songs: np.ndarray) -> Any:
            idx = t.from_numpy(songs).to(self._dev)
            return (u[:, None, :] * net.emb(idx)).sum(-1) + net.bias(idx)[..., 0]

        s_pos, s_neg = logits(pos), logits(neg)
        return functional.softplus(-s_pos).mean() + functional.softplus(s_neg).mean()
