import numpy as np
import pandas as pd
import pytest

from segue.data.titles import normalize_title, title_items


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Chill Vibes 🌴!!  ", "chill vibes"),
        ("CHILL   VIBES", "chill vibes"),
        ("R&B / Soul", "r b soul"),
        ("Ｗｏｒｋｏｕｔ", "workout"),  # full-width letters (NFKC)
        ("Été 2017", "été 2017"),
        ("🔥🔥🔥", ""),
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_normalize_title(raw, expected) -> None:
    assert normalize_title(raw) == expected


def test_title_items_are_distinct_words_and_the_whole_title() -> None:
    rows, cols = title_items(np.array([1, 2, 3]), pd.Series(["Chill chill VIBES", None, "🔥"]))
    pairs = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    assert pairs == [(1, "title:chill"), (1, "title:vibes"), (1, "title=chill chill vibes")]


def test_title_items_of_no_titles() -> None:
    rows, cols = title_items(np.array([1]), pd.Series([""]))
    assert len(rows) == len(cols) == 0
