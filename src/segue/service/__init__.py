"""The HTTP service: ``segue serve MODEL_DIR`` continues playlists over JSON in milliseconds.

Why a package of its own: the web stack (FastAPI, uvicorn, pydantic) is imported only by code
that serves, never by ``import segue``. The app (:mod:`.app`) validates requests
(:mod:`.schemas`) and calls one library function per request
(:meth:`segue.inference.continuer.Continuer.continue_playlist`), the same computation as
``segue recommend``.
"""

from __future__ import annotations

from segue.service.app import MAX_BODY_BYTES, MODEL_DIR_ENV, create_app, create_app_from_env

__all__ = ["MAX_BODY_BYTES", "MODEL_DIR_ENV", "create_app", "create_app_from_env"]
