"""Ranking metrics (per-user arrays) and evaluation of recommendation files."""

from segue.metrics.evaluate import Evaluation, evaluate_files, evaluate_lists, read_recommendations
from segue.metrics.ranking import (
    all_metrics,
    average_precision_at_k,
    catalog_coverage,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "Evaluation",
    "all_metrics",
    "average_precision_at_k",
    "catalog_coverage",
    "evaluate_files",
    "evaluate_lists",
    "hit_matrix",
    "hit_rate_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "read_recommendations",
    "recall_at_k",
]
