"""Request and response bodies of the HTTP service, as pydantic models.

Why strict models: the service must answer every bad request with a 4xx that says what was
wrong, never a 500 from deep inside numpy. Validation is therefore done here, at the edge, and
strictly: ``"n": "5"``, ``"n": 5.0`` or ``"n": true`` are type errors rather than guesses, an
unknown field (``"k"`` for ``"n"``) is refused instead of silently ignored, and every list and
string has an upper bound. The bounds (:data:`MAX_N`, :data:`MAX_SEEDS`, ...) are those of the
service's contract; the 1 MiB body limit is enforced before parsing (see :mod:`.app`).

The same classes produce the OpenAPI schema served at ``/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

__all__ = [
    "MAX_EXCLUDE",
    "MAX_ID_CHARS",
    "MAX_N",
    "MAX_N_TAGS",
    "MAX_SEEDS",
    "MAX_TAGS",
    "MAX_TITLE_CHARS",
    "ContinueRequest",
    "ContinueResponse",
    "ErrorItem",
    "ErrorResponse",
    "HealthResponse",
    "ModelInfo",
    "ReadyResponse",
    "RecommendRequest",
    "RecommendResponse",
    "ReloadRequest",
    "ReloadResponse",
]

MAX_N = 1000
"""Most tracks one request may ask for."""
MAX_SEEDS = 1000
"""Most seed tracks of one playlist."""
MAX_TAGS = 100
"""Most seed tags of one playlist."""
MAX_N_TAGS = 100
"""Most tags one request may ask for."""
MAX_EXCLUDE = 10_000
"""Most ids in ``exclude``."""
MAX_ID_CHARS = 512
"""Longest track, user or tag id (in characters)."""
MAX_TITLE_CHARS = 1000
"""Longest playlist title."""

_INT64 = 2**63

IdStr = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
IdInt = Annotated[StrictInt, Field(ge=-_INT64, lt=_INT64)]
Id = IdStr | IdInt
"""A track or user id: a non-empty string (MPD track URIs) or an integer (Melon song ids)."""
Tag = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ContinueRequest(_Strict):
    """A partial playlist to continue; every field is optional (``{}``: the cold-start list)."""

    tracks: list[Id] = Field(
        default_factory=list,
        max_length=MAX_SEEDS,
        description="Seed track ids, in playlist order. Unknown ids are reported, not fatal.",
    )
    title: Annotated[StrictStr, StringConstraints(max_length=MAX_TITLE_CHARS)] | None = Field(
        default=None,
        description="Playlist title: its words count when the model was trained with titles "
        "(the default for playlists); with no known track, tag or title word the answer is the "
        "cold-start list.",
    )
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description="Seed tags; used by models trained with tags (Melon), else reported as "
        "unknown.",
    )
    n: StrictInt = Field(default=100, ge=1, le=MAX_N, description="Tracks to return.")
    n_tags: StrictInt = Field(
        default=10,
        ge=0,
        le=MAX_N_TAGS,
        description="Tags to return (models trained with tags only; otherwise none).",
    )
    exclude: list[Id] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDE,
        description="Track ids never to return, on top of the seeds.",
    )


class ContinueResponse(BaseModel):
    """The continuation, best first; seeds and excluded tracks never appear in it."""

    tracks: list[Id] = Field(description="Recommended track ids, best first (at most n).")
    scores: list[float] = Field(description="The model's score of each track.")
    tags: list[str] = Field(description="Recommended tags (empty for models without tags).")
    unknown_tracks: list[Id] = Field(description="Seed tracks the model does not know.")
    unknown_tags: list[str] = Field(description="Seed tags the model does not know.")
    cold_start: bool = Field(description="No seed was known: this is the cold-start list.")
    model: str = Field(description="The model class that answered.")
    took_ms: float = Field(description="Server-side computing time of the answer.")


class RecommendRequest(_Strict):
    """A user (listener, or training playlist pid) known to the model."""

    user: Id = Field(description="User id as in the training data (a pid for playlist models).")
    n: StrictInt = Field(default=100, ge=1, le=MAX_N, description="Items to return.")
    n_tags: StrictInt = Field(
        default=10, ge=0, le=MAX_N_TAGS, description="Tags to return (models with tags only)."
    )


class RecommendResponse(BaseModel):
    """The user's top items, best first, without the items already in the user's history."""

    user: Id
    tracks: list[Id] = Field(description="Recommended item ids, best first (at most n).")
    scores: list[float]
    tags: list[str]
    model: str
    took_ms: float


class HealthResponse(BaseModel):
    """Liveness: the process answers (``model`` is null while the first model loads)."""

    status: str
    model: str | None


class ReadyResponse(BaseModel):
    """Readiness: a model is loaded and answers requests."""

    status: str
    model: str = Field(description="The model class that answers.")
    model_dir: str = Field(description="The directory it was loaded from.")
    loaded_at: float = Field(description="Unix time it was loaded.")


class ReloadRequest(_Strict):
    """Which model directory ``POST /admin/reload`` loads (none: the current one again)."""

    model_dir: Annotated[StrictStr, StringConstraints(min_length=1, max_length=4096)] | None = (
        Field(default=None, description="A directory written by segue train.")
    )


class ReloadResponse(BaseModel):
    """The model now served, and the one it replaced."""

    status: str
    model: str
    model_dir: str
    previous_model: str | None
    previous_model_dir: str | None
    took_ms: float = Field(description="Time to load, warm up and check the new model.")


class ModelInfo(BaseModel):
    """What is being served: the class, its parameters, its training data and versions."""

    model: str = Field(description="Class name (EASE, WRMF, ...).")
    class_path: str = Field(description="module:Class as written in the manifest.")
    params: dict[str, Any] = Field(description="Hyper-parameters of the model.")
    training: dict[str, Any] = Field(
        description="Training data summary: rows (users or playlists), items, tracks, tags, "
        "interactions, fit seconds."
    )
    version: dict[str, Any] = Field(
        description="segue version serving, segue/numpy/python versions that saved the model, "
        "model format version, creation time."
    )
    uses_title: bool = Field(description="Whether the model reads playlist titles.")
    has_tags: bool = Field(description="Whether the model recommends tags.")


class ErrorItem(BaseModel):
    """One validation problem: where (``loc``) and what (``msg``)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer: a one-line ``detail``, and for validation the list of errors."""

    detail: str
    errors: list[ErrorItem] | None = None
