"""NCF: neural collaborative filtering (He, Liao, Zhang, Nie, Hu, Chua, WWW 2017).

Why this model: the best-known neural replacement of the dot product. NeuMF fuses two towers
with *separate* user and item embeddings: GMF (the element-wise product ``p_u * q_i``, a
generalised dot product) and an MLP over the concatenation ``[p_u, q_i]`` (ReLU layers); one
final linear layer reads both and gives the logit of ``P(u plays i)``. It learns from binary
implicit feedback with binary cross-entropy: every observed pair is a positive, and each brings
``negatives`` items drawn uniformly among those the user never played (4 in the paper). The
paper's pretraining of the two towers apart is left out (Adam from a random start, as its own
ablation "without pretraining").

Why it matters to measure it: scoring a whole catalogue through an MLP costs a small network
per (user, item) pair, where a dot product costs one row of a matrix product, and Rendle et al.
(RecSys 2020) found a tuned dot product better. ``towers="gmf"`` trains the GMF tower alone (a
dot product learned with the same loss and sampler), so NCF can be compared with its own dot
product (``bench/ncf.py``).

Scoring: the GMF part is one matrix product (``p_u @ (q * h_gmf).T``); the MLP's first layer is
split into a user half and an item half, the item half precomputed once per catalogue, so each
(user, item) pair costs only the ReLU layers after it, run in chunks of users so the
``(users, items, width)`` activations stay under about 64 MiB.

Fold-in (a user or playlist not in training, or a known user with new listens): **a few gradient
steps on its own embeddings with the item side frozen**, from zero vectors, with Adam on the
same binary cross-entropy: its items as positives, a fixed seeded pool of items (those of the
pool it does not hold) as negatives, weighted so that they count ``negatives`` times as much as
the positives, as in training. Every row is optimised on its own (the loss is a sum over rows and
Adam is element-wise), so a row's fold-in does not depend on its batch. A folded-in copy of a
trained user is close to, not exactly, that user: its vectors come from a few steps, not from
the epochs of training beside every other user (the contract test's ``folds_in_exactly`` is
False for that reason).

Early stopping: NDCG@100 on questions carved from the training rows
(:func:`segue.nn.holdout.carve_holdout`), never on evaluation answers; the best epoch is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender, FitData
from segue.models.registry import register
from segue.nn.holdout import carve_holdout, holdout_ndcg
from segue.nn.optim import MixedAdam
from segue.nn.params import check_params, check_sizes
from segue.nn.runtime import check_device, resolve_device, seeded, torch
from segue.nn.tensors import load_weights, weights_of
from segue.nn.training import fit_epochs

__all__ = ["NCF"]

Towers = Literal["neumf", "gmf", "mlp"]
_TOWERS = ("neumf", "gmf", "mlp")
_CHUNK_FLOATS = 1 << 24  # MLP activations per scoring chunk (64 MiB of float32)
_FOLD_POOL = 1024  # negatives of a fold-in row: this many seeded items (minus its own)


def _network(
    n_users: int, n_items: int, factors: int, mlp_factors: int, hidden: Sequence[int], towers: str
) -> Any:
    t = torch()
    nn = t.nn

    class NeuMF(nn.Module):
        """GMF and MLP towers with separate embeddings, one output layer over both."""

        def __init__(self) -> None:
            super().__init__()
            width = 0
            self.gmf = towers in ("neumf", "gmf")
            self.mlp = towers in ("neumf", "mlp")
            if self.gmf:
                self.user_gmf = nn.Embedding(n_users, factors, sparse=True)
                self.item_gmf = nn.Embedding(n_items, factors, sparse=True)
                width += factors
            if self.mlp:
                self.user_mlp = nn.Embedding(n_users, mlp_factors, sparse=True)
                self.item_mlp = nn.Embedding(n_items, mlp_factors, sparse=True)
                sizes = [2 * mlp_factors, *hidden]
                self.layers = nn.ModuleList(
                    nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
                )
                width += sizes[-1]
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    nn.init.normal_(module.weight, std=0.01)  # the paper's N(0, 0.01)
            self.out = nn.Linear(width, 1)

        def logits(self, pu_g: Any, qi_g: Any, pu_m: Any, qi_m: Any) -> Any:
            """Logits of aligned (user, item) vectors (any of them None for a missing tower)."""
            parts = []
            if self.gmf:
                parts.append(pu_g * qi_g)
            if self.mlp:
                h = t.cat([pu_m, qi_m], dim=-1)
                for layer in self.layers:
                    h = t.relu(layer(h))
                parts.append(h)
            return self.out(t.cat(parts, dim=-1)).squeeze(-1)

        def forward(self, users: Any, items: Any) -> tuple[Any, Any]:
            """Logits of (user, item) pairs, and the squared norm of the rows they looked up."""
            g = (self.user_gmf(users), self.item_gmf(items)) if self.gmf else (None, None)
            m = (self.user_mlp(users), self.item_mlp(items)) if self.mlp else (None, None)
            norm = sum((v**2).sum() for v in (*g, *m) if v is not None)
            return self.logits(g[0], g[1], m[0], m[1]), norm

        def score_all(self, pu_g: Any, pu_m: Any, chunk: int) -> Any:
            """``(n, n_items)`` logits of user vectors against every item."""
            n = (pu_g if pu_g is not None else pu_m).shape[0]
            out = self.out.bias.expand(n, n_items).clone()
            if self.gmf:
                h_gmf = self.out.weight[0, :factors]
                out += pu_g @ (self.item_gmf.weight * h_gmf).T
            if self.mlp:
                first = self.layers[0]
                w_user, w_item = first.weight[:, :mlp_factors], first.weight[:, mlp_factors:]
                item_half = self.item_mlp.weight @ w_item.T + first.bias  # (n_items, h0)
                user_half = pu_m @ w_user.T  # (n, h0)
                h_mlp = self.out.weight[0, -hidden[-1] :]
                for start in range(0, n, chunk):
                    h = t.relu(user_half[start : start + chunk, None, :] + item_half[None])
                    for layer in self.layers[1:]:
                        h = t.relu(layer(h))
                    out[start : start + chunk] += h @ h_mlp
            return out

    return NeuMF()


@register("ncf")
class NCF(BaseRecommender):
    """Neural collaborative filtering, NeuMF (module docstring).

    Parameters
    ----------
    factors
        Length of the GMF tower's user and item embeddings.
    mlp_factors
        Length of the MLP tower's user and item embeddings (the first layer reads both).
    hidden
        Widths of the MLP's ReLU layers (the paper's tower: halving widths).
    towers
        ``"neumf"`` (both, fused), ``"gmf"`` (the learned dot product alone) or ``"mlp"``.
    negatives
        Items drawn per positive, uniformly among those the user did not play.
    l2
        L2 penalty of the embedding rows a mini-batch looks up (per pair), against the
        overfitting the paper's unregularised towers show on small data.
    lr, weight_decay
        Adam's learning rate, and the L2 penalty of the dense layers.
    epochs, patience
        At most ``epochs`` passes over the positives; stop after ``patience`` epochs without
        a better validation NDCG@100 (the best epoch is kept).
    batch_size
        Positives per mini-batch (each with its ``negatives``).
    validation_rows
        Training rows that lend 20% of their items as early-stopping questions (0: none).
    fold_in_steps, fold_in_lr
        Adam steps and learning rate of the fold-in of a row not in training.
    seed
        Seed of initialisation, sampling and fold-in (same seed and thread count: same model).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    libraries = ("torch", "safetensors")
    required_state = ("weights_",)
    unsaved_state = frozenset({"epochs_"})

    def __init__(
        self,
        factors: int = 32,
        mlp_factors: int = 32,
        hidden: Sequence[int] = (64, 32, 16),
        towers: Towers = "neumf",
        negatives: int = 4,
        l2: float = 0.0,
        lr: float = 0.002,
        weight_decay: float = 0.0,
        epochs: int = 20,
        patience: int = 2,
        batch_size: int = 1024,
        validation_rows: int = 500,
        fold_in_steps: int = 30,
        fold_in_lr: float = 0.05,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.factors = factors
        self.mlp_factors = mlp_factors
        self.hidden = hidden
        self.towers = towers
        self.negatives = negatives
        self.l2 = l2
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.validation_rows = validation_rows
        self.fold_in_steps = fold_in_steps
        self.fold_in_lr = fold_in_lr
        self.seed = seed
        self.device = device

    def _validate_params(self) -> None:
        check_params(
            self,
            ints={
                "factors": 1,
                "mlp_factors": 1,
                "negatives": 1,
                "epochs": 1,
                "patience": 1,
                "batch_size": 1,
                "validation_rows": 0,
                "fold_in_steps": 0,
                "seed": 0,
            },
        )
        check_sizes("hidden", self.hidden)
        if self.towers not in _TOWERS:
            raise ParameterError(f"towers must be one of {', '.join(_TOWERS)}, got {self.towers!r}")
        check_params(self, positive=("lr", "fold_in_lr"), non_negative=("weight_decay", "l2"))
        check_device(self.device)

    # network --------------------------------------------------------------------------------
    def _new_network(self, n_users: int, n_items: int) -> Any:
        return _network(
            n_users,
            n_items,
            int(self.factors),
            int(self.mlp_factors),
            [int(h) for h in self.hidden],
            self.towers,
        )

    def network(self) -> Any:
        """The live network (rebuilt from ``weights_`` after a load)."""
        self.check_fitted()
        net = self.__dict__.get("_net")
        if net is None or self.__dict__.get("_net_weights") is not self.weights_:
            self._dev = resolve_device(self.device)
            net = self._new_network(len(self.users_), len(self.items_))
            load_weights(net, self.weights_)
            self._net, self._net_weights = net.to(self._dev), self.weights_
        self._net.eval()
        return self._net

    def restore_state(self, state: dict[str, Any]) -> None:
        """Set the loaded state; mismatched weights are refused here, not at the first query."""
        super().restore_state(state)
        self._net = None
        self.network()

    def _chunk(self, n_items: int) -> int:
        width = int(self.hidden[0]) if self.towers != "gmf" else 1
        return max(1, _CHUNK_FLOATS // max(1, n_items * width))

    # fitting --------------------------------------------------------------------------------
    def _fit(self, data: FitData) -> None:
        t = torch()
        dev = resolve_device(self.device)
        matrix = sp.csr_array(data.matrix, dtype=np.float32, copy=True)
        matrix.data[:] = 1.0
        n_users, n_items = matrix.shape
        rng = np.random.default_rng(self.seed)
        with seeded(self.seed, dev) as gen:
            holdout = None
            if self.validation_rows:
                holdout = carve_holdout(
                    matrix, n_rows=self.validation_rows, seed=self.seed, order=data.order()
                )
            train = holdout.train if holdout is not None else matrix
            train.sort_indices()
            users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(train.indptr))
            items = train.indices.astype(np.int64)
            keys = users * n_items + items  # sorted (CSR order): the positives, for rejection
            if not len(keys):
                raise ParameterError("NCF needs at least one interaction to train on")
            net = self._new_network(n_users, n_items).to(dev)
            self._net, self._dev, self._net_weights = net, dev, None
            optimizer = MixedAdam(net, self.lr, self.weight_decay)
            loss_fn = t.nn.BCEWithLogitsLoss()
            k = int(self.negatives)
            labels = t.cat([t.ones(1), t.zeros(k)]).to(dev)

            def run_epoch(_: int) -> float:
                net.train()
                order = t.randperm(len(keys), generator=gen).numpy()
                total, batches = 0.0, 0
                for start in range(0, len(order), self.batch_size):
                    sel = order[start : start + self.batch_size]
                    u, i = users[sel], items[sel]
                    neg = _negatives(rng, u, keys, n_items, k)
                    bu = t.from_numpy(np.repeat(u, k + 1)).to(dev)
                    bi = t.from_numpy(np.column_stack([i, neg]).ravel()).to(dev)
                    y = labels.repeat(len(sel))
                    logits, norm = net(bu, bi)
                    loss = loss_fn(logits, y) + self.l2 * norm / len(y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach())
                    batches += 1
                return total / max(1, batches)

            validate = None
            if holdout is not None:

                def validate() -> float:
                    net.eval()
                    with t.no_grad():
                        return holdout_ndcg(
                            lambda rows, _q: self._known_scores(net, rows, n_items), holdout
                        )

            self.epochs_ = fit_epochs(
                model="ncf",
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

    # scoring --------------------------------------------------------------------------------
    def _known_scores(self, net: Any, rows: IdxArray, n_items: int) -> ScoreMatrix:
        t = torch()
        idx = t.from_numpy(np.asarray(rows, dtype=np.int64)).to(self._dev)
        with t.no_grad():
            pu_g = net.user_gmf(idx) if net.gmf else None
            pu_m = net.user_mlp(idx) if net.mlp else None
            out = net.score_all(pu_g, pu_m, self._chunk(n_items))
        return out.to("cpu").numpy().astype(np.float32, copy=False)

    def user_vectors(self, user_idx: IdxArray, history: sp.csr_array) -> tuple[Any, Any]:
        """GMF and MLP user vectors (torch, None for a missing tower): trained or folded in."""
        t = torch()
        net = self.network()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        n = len(user_idx)
        known = user_idx >= 0
        vectors = []
        for on, name, size in (
            (net.gmf, "user_gmf", self.factors),
            (net.mlp, "user_mlp", self.mlp_factors),
        ):
            if not on:
                vectors.append(None)
                continue
            v = t.zeros((n, int(size)), device=self._dev)
            if known.any():
                idx = t.from_numpy(user_idx[known]).to(self._dev)
                with t.no_grad():
                    v[t.from_numpy(np.flatnonzero(known)).to(self._dev)] = getattr(net, name)(idx)
            vectors.append(v)
        new = np.flatnonzero(~known)
        if len(new) and self.fold_in_steps:
            g, m = self._fold_in(net, sp.csr_array(history[new]))
            where = t.from_numpy(new).to(self._dev)
            if g is not None:
                vectors[0][where] = g
            if m is not None:
                vectors[1][where] = m
        return vectors[0], vectors[1]

    def _fold_in(self, net: Any, rows: sp.csr_array) -> tuple[Any, Any]:
        """Vectors of new rows: Adam steps on them alone, the network frozen (module docstring)."""
        t = torch()
        dev = self._dev
        n, n_items = rows.shape
        rows = sp.csr_array(rows)
        rows.sum_duplicates()
        pool = np.sort(
            np.random.default_rng(self.seed).choice(
                n_items, size=min(_FOLD_POOL, n_items), replace=False
            )
        )
        pos_r = np.repeat(np.arange(n), np.diff(rows.indptr))
        pos_c = rows.indices.astype(np.int64)
        neg_r = np.repeat(np.arange(n), len(pool))
        neg_c = np.tile(pool, n)
        held = sp.csr_array((np.ones(len(pos_c)), (pos_r, pos_c)), shape=rows.shape)
        free = np.asarray(held[neg_r, neg_c]).ravel() == 0
        neg_r, neg_c = neg_r[free], neg_c[free]
        n_pos = np.bincount(pos_r, minlength=n).astype(np.float64)
        n_neg = np.maximum(np.bincount(neg_r, minlength=n), 1).astype(np.float64)
        # per row: positives weigh 1, negatives together weigh ``negatives`` times the positives
        weight = np.concatenate(
            [np.ones(len(pos_r)), self.negatives * n_pos[neg_r] / n_neg[neg_r]]
        ).astype(np.float32)
        r = t.from_numpy(np.concatenate([pos_r, neg_r]).astype(np.int64)).to(dev)
        c = t.from_numpy(np.concatenate([pos_c, neg_c]).astype(np.int64)).to(dev)
        y = t.from_numpy(
            np.concatenate([np.ones(len(pos_r)), np.zeros(len(neg_r))]).astype(np.float32)
        ).to(dev)
        w = t.from_numpy(weight).to(dev)
        g = t.zeros((n, int(self.factors)), device=dev, requires_grad=True) if net.gmf else None
        m = t.zeros((n, int(self.mlp_factors)), device=dev, requires_grad=True) if net.mlp else None
        params = [p for p in (g, m) if p is not None]
        optimizer = t.optim.Adam(params, lr=self.fold_in_lr)
        with t.no_grad():
            qi_g = net.item_gmf.weight[c] if net.gmf else None
            qi_m = net.item_mlp.weight[c] if net.mlp else None
        with t.enable_grad():
            for _ in range(int(self.fold_in_steps)):
                logits = net.logits(
                    g[r] if g is not None else None, qi_g, m[r] if m is not None else None, qi_m
                )
                loss = t.nn.functional.binary_cross_entropy_with_logits(
                    logits, y, weight=w, reduction="sum"
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        for p in net.parameters():
            p.grad = None
        return (
            g.detach() if g is not None else None,
            m.detach() if m is not None else None,
        )

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        t = torch()
        net = self.network()
        pu_g, pu_m = self.user_vectors(user_idx, history)
        with t.no_grad():
            out = net.score_all(pu_g, pu_m, self._chunk(len(self.items_)))
        return out.to("cpu").numpy().astype(np.float32, copy=False)

    def score_pairs(
        self, user_idx: IdxArray, history: sp.csr_array, query: np.ndarray, item: np.ndarray
    ) -> np.ndarray:
        """Logits of (query row, item) pairs only: a ranker feature over candidates.

        ``query`` indexes the rows of ``user_idx`` / ``history``. Costs one network pass per
        pair instead of one per catalogue item.
        """
        t = torch()
        net = self.network()
        pu_g, pu_m = self.user_vectors(user_idx, history)
        q = t.from_numpy(np.asarray(query, dtype=np.int64)).to(self._dev)
        i = t.from_numpy(np.asarray(item, dtype=np.int64)).to(self._dev)
        out = []
        with t.no_grad():
            for start in range(0, len(q), 1 << 16):
                qs, its = q[start : start + (1 << 16)], i[start : start + (1 << 16)]
                out.append(
                    net.logits(
                        pu_g[qs] if pu_g is not None else None,
                        net.item_gmf(its) if net.gmf else None,
                        pu_m[qs] if pu_m is not None else None,
                        net.item_mlp(its) if net.mlp else None,
                    )
                )
        if not out:
            return np.zeros(0, dtype=np.float32)
        return t.cat(out).to("cpu").numpy().astype(np.float32)


def _negatives(
    rng: np.random.Generator, users: np.ndarray, keys: np.ndarray, n_items: int, k: int
) -> np.ndarray:
    """``(len(users), k)`` items drawn uniformly, redrawn (a few times) where the user has them."""
    neg = rng.integers(0, n_items, size=(len(users), k))
    for _ in range(5):
        cand = users[:, None] * n_items + neg
        pos = np.minimum(np.searchsorted(keys, cand), len(keys) - 1)
        clash = keys[pos] == cand
        if not clash.any():
            break
        neg[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    return neg
