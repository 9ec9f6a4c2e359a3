"""A CF model whose queries are densified: the way a two-stage first stage uses densification.

Densification (:mod:`segue.inference.densify`) is an option of continuation, not a model; but
a first-stage source of the two-stage model is named by a model spec in ``two-stage.toml``, and
so is this adapter::

    [first_stage.knn_dense]
    model = "densified"
    params = { model = { model = "userknn" }, content = { model = "content-autoencoder" } }

It fits both models on the same playlists and, in the retrieval hook, pads each query with its
songs' content neighbours before the CF model retrieves songs (tags, for Melon, come from the
query as asked); only the real seeds are masked. Its
lists equal ``continue_playlists(cf, queries, densify=Densifier(content, ...))`` (a test checks
it). Cold neighbours cannot be candidates (the CF model does not know them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender, FitData, QueryBatch, Target, TopK
from segue.models.registry import model_class, register

__all__ = ["Densified"]


def _spec_model(name: str, spec: Any) -> BaseRecommender:
    if not isinstance(spec, dict) or "model" not in spec or set(spec) - {"model", "params"}:
        raise ParameterError(f"{name} must be {{'model': NAME, 'params': {{...}}}}, got {spec!r}")
    return model_class(spec["model"])().set_params(**spec.get("params", {}))


@register("densified")
class Densified(BaseRecommender):
    """A CF model scoring content-densified queries (module docstring).

    Parameters
    ----------
    model
        The CF model, as a spec ``{"model": NAME, "params": {...}}``.
    content
        The content model (``content-autoencoder``), as a spec.
    size, per_seed, weight
        As :class:`~segue.inference.densify.Densifier`.
    """

    needs_playlists: ClassVar[bool] = True
    required_state = ("cf_", "content_")

    def __init__(
        self,
        model: dict | None = None,
        content: dict | None = None,
        size: int = 100,
        per_seed: int = 3,
        weight: float = 1.0,
    ) -> None:
        self.model = model
        self.content = content
        self.size = size
        self.per_seed = per_seed
        self.weight = weight

    def _models(self) -> tuple[BaseRecommender, BaseRecommender]:
        cf = _spec_model("model", self.model or {"model": "userknn"})
        content = _spec_model("content", self.content or {"model": "content-autoencoder"})
        return cf, content

    def _validate_params(self) -> None:
        cf, content = self._models()
        cf.validate_params()
        content.validate_params()
        self._densifier_check()

    def _densifier_check(self) -> None:
        for name in ("size", "per_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"{name} must be a positive int, got {value!r}")
        if not (isinstance(self.weight, int | float) and self.weight > 0):
            raise ParameterError(f"weight must be positive, got {self.weight!r}")

    def _fit(self, data: FitData) -> None:
        cf, content = self._models()
        self.content_ = content.fit(data.train)
        self.cf_ = cf.fit(data.train, valid=data.valid)
        if self.cf_.items_ != data.train.items:
            raise ParameterError("the CF model of 'densified' must keep the training columns")

    def _densifier(self) -> Any:
        from segue.inference.densify import Densifier

        found = getattr(self, "_dens", None)
        if found is None or found.content is not self.content_:
            found = Densifier(self.content_, self.size, self.per_seed, float(self.weight))
            self._dens = found
        return found

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        rows = self._densifier().expand(history, self.items_).rows
        return self.cf_.score(np.full(len(user_idx), -1, dtype=np.int32), rows)

    def _retrieve(self, batch: QueryBatch, targets: Mapping[str, Target]) -> dict[str, TopK]:
        """Songs from the densified rows; tags from the rows as asked (as continuation does)."""
        rows = self._densifier().expand(batch.rows, self.items_).rows
        unseen = np.full(len(batch), -1, dtype=np.int32)
        songs = {k: t for k, t in targets.items() if k != "tags"}
        found = {}
        for chosen, query in ((songs, rows), ({"tags": targets.get("tags")}, batch.rows)):
            if not chosen or None in chosen.values():
                continue
            found.update(
                self.cf_.retrieve(
                    unseen,
                    query,
                    chosen,
                    exclude_seen=False,
                    exclude=batch.mask,
                    playlists=batch.playlists,
                    batch_size=max(1, len(batch)),
                )
            )
        return found
