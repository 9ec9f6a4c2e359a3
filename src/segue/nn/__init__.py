"""PyTorch plumbing shared by segue's neural models.

Nothing here is imported by ``import segue``: the neural models import it when they fit or load,
and a machine without torch gets :class:`~segue._extras.MissingExtraError` naming the ``neural``
extra. The pieces: device choice and seeded, repeatable randomness (:mod:`.runtime`), sparse rows
to tensors and weights to safetensors-ready arrays (:mod:`.tensors`), a validation split carved
from the training rows (:mod:`.holdout`) and the epoch loop with early stopping and progress
(:mod:`.training`).
"""
