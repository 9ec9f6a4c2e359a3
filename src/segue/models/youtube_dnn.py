"""YouTube-style deep candidate generation (Covington, Adams, Sargin, RecSys 2016).

Why: the template of deep retrieval. A query tower reads what a playlist has, whatever it is:
the average embedding of its seed songs, the average embedding of its title words, the average
embedding of its tags (Melon), and playlist features (the number of seeds, with its square and
square root, and the playlist's age, the paper's "example age": its time before the newest
training playlist where the playlists carry dates, 0 at query time). They are concatenated and
pass through ReLU layers to a query vector ``u``; a song's score is ``u . v_j + b_j``.

Training is extreme classification: from the first ``k`` seeds of a training playlist (``k``
drawn per playlist and mini-batch, the paper's "predict the next watch", not a random held-out
one), the song to find is drawn from those after ``k``; the softmax runs over the batch's own
positives and ``negatives`` songs drawn from popularity^``sample_power``, with every logit
corrected by ``-log`` of the candidate's expected count in that pool (the log-Q correction),
so the sampled softmax estimates the full one. A title-only or tags-only query has a vector
(cold start), since the seed average is simply zero. Retrieval is one inner product over the
catalogue (:class:`~segue.models.tower.QueryTower`), the bias carried as an extra dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segue.exceptions import ParameterError
from segue.models.registry import register
from segue.models.tower import QueryTower
from segue.nn.runtime import torch
from segue.nn.sequences import Ragged

__all__ = ["YouTubeDNN"]

_MAX_LENGTH = 100.0  # seeds at which the length feature reaches 1 (the MPD's longest question)


def _network(n_items: int, dim: int, hidden: Sequence[int], dropout: float) -> Any:
    t = torch()
    nn, functional = t.nn, t.nn.functional

    class CandidateGenerator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # sparse gradients: a step touches only the rows its batch met
            self.inputs = nn.Embedding(n_items, dim, sparse=True)
            self.outputs = nn.Embedding(n_items, dim, sparse=True)
            nn.init.normal_(self.inputs.weight, std=0.1)
            nn.init.normal_(self.outputs.weight, std=0.1)
            self.bias = nn.Embedding(n_items, 1, sparse=True)
            nn.init.zeros_(self.bias.weight)
            layers: list[Any] = []
            width = 3 * dim + 4
            for size in hidden:
                layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
                width = size
            layers.append(nn.Linear(width, dim))
            self.tower = nn.Sequential(*layers)

        def user(self, x: dict[str, Any]) -> Any:
            bags = [
                functional.embedding_bag(
                    x[name][0], self.inputs.weight, x[name][1], mode="mean", sparse=True
                )
                for name in ("seeds", "titles", "tags")
            ]
            length = t.log1p(x["length"]) / np.log1p(_MAX_LENGTH)
            features = t.stack([length, length**2, t.sqrt(length), x["age"]], dim=1)
            return self.tower(t.cat([*bags, features], dim=1))

        def query(self, x: dict[str, Any]) -> Any:
            u = self.user(x)
            return t.cat([u, t.ones_like(u[:, :1])], dim=1)

        def item_tables(self) -> list[Any]:
            return [self.inputs, self.outputs]

        def items(self) -> Any:
            return t.cat([self.outputs.weight, self.bias.weight], dim=1)

    return CandidateGenerator()


@register("youtube-dnn")
class YouTubeDNN(QueryTower):
    """Deep candidate generation with a sampled softmax (module docstring).

    Parameters
    ----------
    dim
        Length of the embeddings and of the query vector.
    hidden
        Widths of the ReLU layers of the query tower (empty: one linear layer).
    negatives
        Popularity-drawn songs shared by a mini-batch, besides its own positives.
    sample_power
        Negatives are drawn with probability proportional to popularity to this power.
    samples
        Prediction points drawn per playlist and epoch (an epoch is ``samples`` passes).
    init
        ``"svd"``: the song embeddings start from the truncated SVD of the training rows
        (scaled); ``"random"``: from N(0, 0.1).
    dropout
        Dropout after every ReLU layer.
    lr, weight_decay
        Adam's learning rate and L2 penalty.
    epochs, patience
        At most ``epochs`` passes; stop after ``patience`` without a better validation NDCG.
    batch_size
        Playlists per mini-batch (each brings one positive: the in-batch negatives).
    validation_rows
        Training playlists whose last 20% of songs are hidden for early stopping (0: none).
    seed
        Seed of initialisation and sampling (same seed and thread count: same model).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    label = "youtube-dnn"
    _int_params = (*QueryTower._int_params, ("negatives", 0))
    _nonnegative_params = (*QueryTower._nonnegative_params, "sample_power")

    def __init__(
        self,
        dim: int = 64,
        hidden: Sequence[int] = (256,),
        negatives: int = 1024,
        sample_power: float = 0.75,
        samples: int = 1,
        init: str = "svd",
        dropout: float = 0.1,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        epochs: int = 30,
        patience: int = 3,
        batch_size: int = 256,
        validation_rows: int = 1000,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.dim = dim
        self.hidden = hidden
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
        super()._validate_params()
        hidden = self.hidden
        if (
            isinstance(hidden, str | bytes)
            or not isinstance(hidden, Sequence)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in hidden)
        ):
            raise ParameterError(f"hidden must be a list of positive ints, got {hidden!r}")

    def _network(self, n_items: int) -> Any:
        return _network(n_items, self.dim, list(self.hidden), self.dropout)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The softmax over the catalogue: the probability that song j comes next."""
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
        return logits

    def _sampling(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Track columns, their negative-sampling probabilities and target frequencies."""
        cached = self.__dict__.get("_sampling_cache")
        if cached is None or cached[0] is not self._popularity:
            columns = self._track_columns
            pop = self._popularity[columns] + 1.0
            sample = pop**self.sample_power
            cached = (self._popularity, columns, sample / sample.sum(), pop / pop.sum())
            self._sampling_cache = cached
        return cached[1], cached[2], cached[3]

    def _loss(
        self, net: Any, inputs: dict[str, Any], after: Ragged, rng: np.random.Generator
    ) -> Any:
        t = torch()
        n = len(after)
        pick = np.floor(rng.random(n) * after.lengths()).astype(np.int64)
        positives = after.values[after.indptr[:-1] + pick]
        columns, sample_p, target_f = self._sampling()
        drawn = rng.choice(len(columns), size=self.negatives, p=sample_p) if self.negatives else []
        where = np.searchsorted(columns, positives)
        candidates = np.concatenate([positives, columns[drawn]])
        # expected count of each candidate in the pool: n draws from the targets' frequencies
        # plus the popularity-drawn negatives (the log-Q correction)
        pool_index = np.concatenate([where, np.asarray(drawn, dtype=np.int64)])
        expected = n * target_f[pool_index] + self.negatives * sample_p[pool_index]
        cand = t.from_numpy(candidates).to(self._dev)
        u = net.user(inputs)
        logits = u @ net.outputs(cand).T + net.bias(cand)[:, 0]
        logits = logits - t.from_numpy(np.log(expected).astype(np.float32)).to(self._dev)
        # the row's own positive met again elsewhere in the pool is no negative
        same = t.from_numpy(candidates[None, :] == positives[:, None]).to(self._dev)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, -t.inf)
        labels = t.arange(n, device=self._dev)
        return t.nn.functional.cross_entropy(logits, labels)
