"""Per-bucket tables (hand-computed means and counts) and their PNG bar charts."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.exceptions import ParameterError
from segue.metrics.buckets import (
    ALL_LABEL,
    bucket_table,
    length_buckets,
    plot_bucket_metrics,
    plot_buckets,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------
# length_buckets
# ------------------------------------------------------------------------------------------


def test_default_length_buckets_have_readable_ordered_labels() -> None:
    got = length_buckets([0, 1, 4, 5, 9, 10, 24, 25, 99, 100, 250])
    assert list(got) == [
        "0",
        "1-4",
        "1-4",
        "5-9",
        "5-9",
        "10-24",
        "10-24",
        "25-99",
        "25-99",
        "100+",
        "100+",
    ]
    assert list(got.categories) == ["0", "1-4", "5-9", "10-24", "25-99", "100+"]
    assert got.ordered


def test_custom_edges_and_empty_buckets_stay_categories() -> None:
    got = length_buckets(np.array([3, 3]), edges=(0, 2, 3, 10))
    assert list(got) == ["3-9", "3-9"]
    assert list(got.categories) == ["0-1", "2", "3-9"]


@pytest.mark.parametrize(
    ("lengths", "edges", "match"),
    [
        ([-1], (0, 1, math.inf), "not integers in"),
        ([1.5], (0, 1, math.inf), "not integers in"),
        ([math.nan], (0, 1, math.inf), "not integers in"),
        ([10], (0, 5, 10), "not integers in"),  # the last edge is exclusive
        ([1], (0,), "at least two"),
        ([1], (0, 5, 5), "strictly increasing"),
        ([1], (0, 2.5, 5), "integers"),
    ],
)
def test_length_buckets_rejects(lengths: list, edges: tuple, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        length_buckets(lengths, edges)


# ------------------------------------------------------------------------------------------
# bucket_table
# ------------------------------------------------------------------------------------------


@pytest.fixture
def per_item() -> pd.DataFrame:
    # seeds -> bucket: 0 -> "0"; 1, 3, 1 -> "1-4"; 12 -> "10-24"; 150 -> "100+"
    return pd.DataFrame(
        {
            "seeds": [0, 1, 3, 12, 150, 1],
            "title": ["yes", "no", "yes", "yes", "no", "no"],
            "ndcg": [0.1, 0.2, np.nan, 0.4, 0.5, 0.8],
            "clicks": [51.0, 2.0, 0.0, 1.0, 0.0, 3.0],
        }
    )


def test_bucket_table_means_counts_and_all_row(per_item: pd.DataFrame) -> None:
    per_item["bucket"] = length_buckets(per_item["seeds"])
    got = bucket_table(per_item, "bucket", ["ndcg", "clicks"])
    # natural bucket order (not alphabetical: "10-24" < "100+" < "1-4" would be), empty
    # buckets ("5-9", "25-99") left out, "all" last
    assert list(got.index) == ["0", "1-4", "10-24", "100+", ALL_LABEL]
    assert got.index.name == "bucket"
    assert list(got.columns) == ["ndcg", "clicks", "count"]
    # "1-4": ndcg (0.2 + NaN + 0.8) -> mean of the two values 0.5; clicks (2 + 0 + 3) / 3
    assert got.loc["1-4", "ndcg"] == pytest.approx(0.5)
    assert got.loc["1-4", "clicks"] == pytest.approx(5 / 3)
    assert got.loc["1-4", "count"] == 3  # rows, NaN or not
    assert got.loc["0", "ndcg"] == pytest.approx(0.1) and got.loc["0", "clicks"] == 51.0
    # all: ndcg (0.1 + 0.2 + 0.4 + 0.5 + 0.8) / 5 = 0.4; clicks 57 / 6 = 9.5; 6 rows
    assert got.loc[ALL_LABEL, "ndcg"] == pytest.approx(0.4)
    assert got.loc[ALL_LABEL, "clicks"] == pytest.approx(9.5)
    assert got.loc[ALL_LABEL, "count"] == 6
    assert got["count"].dtype == np.int64


def test_bucket_table_on_plain_and_several_columns(per_item: pd.DataFrame) -> None:
    got = bucket_table(per_item, "title", ["clicks"])
    assert list(got.index) == ["no", "yes", ALL_LABEL]
    assert got.loc["no", "clicks"] == pytest.approx((2 + 0 + 3) / 3)
    assert got.loc["yes", "clicks"] == pytest.approx((51 + 0 + 1) / 3)
    per_item["bucket"] = length_buckets(per_item["seeds"])
    two = bucket_table(per_item, ["bucket", "title"], ["ndcg"])
    assert two.index.names == ["bucket", "title"]
    assert two.loc[("1-4", "no"), "ndcg"] == pytest.approx(0.5)  # 0.2 and 0.8
    assert two.loc[("1-4", "yes"), "count"] == 1  # its only ndcg is NaN
    assert math.isnan(two.loc[("1-4", "yes"), "ndcg"])
    assert two.index[-1] == (ALL_LABEL, ALL_LABEL)
    assert two.loc[(ALL_LABEL, ALL_LABEL), "count"] == 6


def test_bucket_table_rejects(per_item: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match="no column"):
        bucket_table(per_item, "nope", ["ndcg"])
    with pytest.raises(ParameterError, match="no column"):
        bucket_table(per_item, "title", ["recall"])
    with pytest.raises(ParameterError, match="at least one"):
        bucket_table(per_item, "title", [])
    per_item.loc[0, "title"] = None
    with pytest.raises(ParameterError, match="missing values"):
        bucket_table(per_item, "title", ["ndcg"])


# ------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------


@pytest.fixture
def tables(per_item: pd.DataFrame) -> dict[str, pd.DataFrame]:
    per_item["bucket"] = length_buckets(per_item["seeds"])
    ease = bucket_table(per_item, "bucket", ["ndcg", "clicks"])
    pop = ease.copy()
    pop[["ndcg", "clicks"]] *= [0.5, 2.0]
    return {"ease": ease, "popularity": pop.drop(index="10-24")}  # a bucket one run lacks


def check_png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000  # a real chart, not an empty canvas
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image


def test_plot_buckets_writes_a_png(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    out = plot_buckets(tables, "ndcg", tmp_path / "plots" / "ndcg.png", title="NDCG by seeds")
    assert out == tmp_path / "plots" / "ndcg.png"
    height, width = check_png(out).shape[:2]
    assert 300 < height < width < 2_000  # a landscape chart at ~120 dpi
    assert [p.name for p in out.parent.iterdir()] == ["ndcg.png"]  # no temporary file left


def test_plot_bucket_metrics_stacks_one_subplot_per_metric(
    tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    one = check_png(plot_buckets(tables, "ndcg", tmp_path / "one.png"))
    two = check_png(plot_bucket_metrics(tables, ["ndcg", "clicks"], tmp_path / "two.png"))
    assert two.shape[0] > 1.5 * one.shape[0]  # two panels, one above the other


def test_plotting_leaves_pyplot_and_its_backend_alone(
    tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    figures = plt.get_fignums()
    plot_buckets(tables, "clicks", tmp_path / "clicks.png")
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == figures


def test_a_failed_plot_keeps_the_old_file(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    target = tmp_path / "ndcg.png"
    target.write_bytes(b"old")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        plot_buckets(tables, "ndcg", target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["ndcg.png"]


def test_plot_rejects(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="no column"):
        plot_buckets(tables, "recall", tmp_path / "x.png")
    with pytest.raises(ParameterError, match="empty"):
        plot_buckets({}, "ndcg", tmp_path / "x.png")
    with pytest.raises(ParameterError, match="at least one"):
        plot_bucket_metrics(tables, [], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
