"""From a query to a list: encoding queries, continuing playlists, the service's one-query path.

- :mod:`segue.inference.encode`: playlists or listens -> a model's rows (one encoder).
- :mod:`segue.inference.continuation`: continue a batch of playlists (``segue recommend
  --challenge/--questions``).
- :mod:`segue.inference.continuer`: one playlist or one user at a time (the HTTP service).

All three end in :meth:`segue.models.base.BaseRecommender.retrieve`, the one inference path.
"""

from segue.inference.continuation import ContinuationBatch, continue_playlists, playlist_targets
from segue.inference.continuer import Continuation, Continuer, UserRecommendation
from segue.inference.encode import EncodedPlaylist, QueryEncoder, playlist_interactions

__all__ = [
    "Continuation",
    "ContinuationBatch",
    "Continuer",
    "EncodedPlaylist",
    "QueryEncoder",
    "UserRecommendation",
    "continue_playlists",
    "playlist_interactions",
    "playlist_targets",
]
