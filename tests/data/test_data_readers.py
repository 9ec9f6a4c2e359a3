"""Readers: listen-count files, target files and CSV/TSV/Parquet tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.data.readers import (
    read_listen_interactions,
    read_listens,
    read_table_interactions,
    read_targets,
    write_listens,
    write_targets,
)
from segue.exceptions import DataFormatError


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# listen-count files -------------------------------------------------------------------------


def test_read_listens_whitespace_and_blank_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "u1\ts1\t3\n\n  u2  s2   4  \n\t\nNA 007 1\r\nu1 s1 2\n")
    df = read_listens(f)
    assert list(df.columns) == ["user_id", "item_id", "count"]
    assert df.user_id.tolist() == ["u1", "u2", "NA", "u1"]
    assert df.item_id.tolist() == ["s1", "s2", "007", "s1"]
    assert df["count"].tolist() == [3, 4, 1, 2]
    assert df["count"].dtype == np.int64
    assert all(isinstance(x, str) for x in [*df.user_id, *df.item_id])


def test_read_listens_ids_stay_strings(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "007 0010 5\nnull NaN 1\nnan N/A 2\n1e3 -1 3\n")
    df = read_listens(f)
    assert df.user_id.tolist() == ["007", "null", "nan", "1e3"]
    assert df.item_id.tolist() == ["0010", "NaN", "N/A", "-1"]
    assert df["count"].tolist() == [5, 1, 2, 3]


def test_read_listens_integral_float_counts_accepted(tmp_path: Path) -> None:
    df = read_listens(write(tmp_path / "l.txt", "a b 2.0\nc d 1e2\n"))
    assert df["count"].tolist() == [2, 100]


def test_read_listens_progress_reports_bytes(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "u1 s1 3\nu2 s2 4\n")
    seen: list[int] = []
    read_listens(f, progress=seen.append)
    assert sum(seen) == f.stat().st_size


def test_read_listen_interactions_sums_duplicates(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "u1 s1 3\nu2 s1 1\nu1 s2 2\nu1 s1 4\n007 s2 1\n")
    data = read_listen_interactions(f)
    assert data.users.to_list() == ["u1", "u2", "007"]
    assert data.items.to_list() == ["s1", "s2"]
    assert data.matrix.toarray().tolist() == [[7.0, 2.0], [1.0, 0.0], [0.0, 1.0]]


BAD_LINES = [
    ("u2 s2", "expected 3 fields (uid sid count), found 2"),
    ("u2", "expected 3 fields (uid sid count), found 1"),
    ("u2 s2 4 5", "expected 3 fields (uid sid count), found 4"),
    ("u2 s2 abc", "count 'abc' is not a number"),
    ("u2 s2 0", "count '0' is not positive"),
    ("u2 s2 -3", "count '-3' is not positive"),
    ("u2 s2 2.5", "count '2.5' is not an integer"),
    ("u2 s2 nan", "count 'nan' is not a finite number"),
    ("u2 s2 NaN", "count 'NaN' is not a finite number"),
    ("u2 s2 inf", "count 'inf' is not a finite number"),
    ("u2 s2 -inf", "count '-inf' is not a finite number"),
    ("u2 s2 1e400", "count '1e400' is not a finite number"),
    ("u2 s2 1_000", "count '1_000' is not a number"),
    ("u2 s2 \u0661\u0662", "count '\u0661\u0662' is not a number"),
    ("u2 s2 1e30", "count '1e30' is too large"),
    ("u2 s2 9223372036854775808", "count '9223372036854775808' is too large"),
]


@pytest.mark.parametrize("position", ["first", "middle", "last"])
@pytest.mark.parametrize(("bad", "reason"), BAD_LINES, ids=[b for b, _ in BAD_LINES])
def test_malformed_line_reports_file_line_reason(
    tmp_path: Path, bad: str, reason: str, position: str
) -> None:
    good = ["u1 s1 3", "", "u3 s3 4", "u4 s4 1"]
    lines = {
        "first": [bad, *good],
        "middle": [good[0], good[1], bad, *good[2:]],
        "last": [*good, bad],
    }
    content = lines[position]
    f = write(tmp_path / "listens.txt", "\n".join(content) + "\n")
    number = content.index(bad) + 1
    with pytest.raises(DataFormatError) as info:
        read_listens(f)
    err = info.value
    assert str(err) == f"{f}:{number}: {reason}"
    assert err.path == str(f) and err.line == number and err.reason == reason


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"u1 s1 3\nu\xff2 s2 4\n", 2),
        (b"u1 s1 3\nu2 s2 4\xfe\n", 2),
        (b"\xc3 s1 3\n", 1),
        (b"u1 s1 3\n\nu3 s\xe2\x82 1\nu4 s4 1\n", 3),
    ],
)
def test_invalid_utf8(tmp_path: Path, content: bytes, line: int) -> None:
    f = write(tmp_path / "l.txt", content)
    with pytest.raises(DataFormatError, match="not valid UTF-8") as info:
        read_listens(f)
    assert str(info.value).startswith(f"{f}:{line}: ")


def test_error_late_in_a_long_file(tmp_path: Path) -> None:
    body = "".join(f"user{i} song{i % 97} {i % 5 + 1}\n" for i in range(1, 5000))
    f = write(tmp_path / "big.txt", body + "userX songX 2.5\n")
    with pytest.raises(DataFormatError) as info:
        read_listens(f)
    assert str(info.value) == f"{f}:5000: count '2.5' is not an integer"
    f = write(tmp_path / "big2.txt", body + "userX songX\n")
    with pytest.raises(DataFormatError, match=r":5000: expected 3 fields"):
        read_listens(f)
    f = write(tmp_path / "big3.txt", body + "userX songX 1 2\n")
    with pytest.raises(DataFormatError, match=r":5000: expected 3 fields"):
        read_listens(f)


@pytest.mark.parametrize("content", ["", "\n\n", "   \n\t \n  "])
def test_empty_listens_file(tmp_path: Path, content: str) -> None:
    f = write(tmp_path / "e.txt", content)
    with pytest.raises(DataFormatError, match="empty") as info:
        read_listens(f)
    assert str(f) in str(info.value)


def test_missing_listens_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file") as info:
        read_listens(tmp_path / "nope.txt")
    assert str(tmp_path / "nope.txt") in str(info.value)
    with pytest.raises(DataFormatError):
        read_listen_interactions(tmp_path / "nope.txt")


# targets -------------------------------------------------------------------------------------


def test_read_targets(tmp_path: Path) -> None:
    f = write(tmp_path / "t.txt", "u3\nu1 u2\tNA\n\n007\nu1\n  u3  \n")
    got = read_targets(f)
    assert isinstance(got, np.ndarray)
    assert got.tolist() == ["u3", "u1", "u2", "NA", "007"]


@pytest.mark.parametrize("content", ["", " \n\n\t"])
def test_read_targets_empty(tmp_path: Path, content: str) -> None:
    f = write(tmp_path / "t.txt", content)
    with pytest.raises(DataFormatError, match="empty"):
        read_targets(f)


def test_read_targets_missing_and_bad_utf8(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        read_targets(tmp_path / "nope")
    f = write(tmp_path / "t.txt", b"u1\nu2\nu\xff3\n")
    with pytest.raises(DataFormatError, match="UTF-8") as info:
        read_targets(f)
    assert info.value.line == 3


# writers --------------------------------------------------------------------------------------


def test_write_listens_round_trip(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"user_id": ["007", "NA", "ü"], "item_id": ["s1", "null", "0"], "count": [3, 1, 12]}
    )
    f = tmp_path / "sub" / "l.txt"
    write_listens(f, df)
    assert f.read_text(encoding="utf-8") == "007 s1 3\nNA null 1\nü 0 12\n"
    back = read_listens(f)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_write_targets_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    write_targets(f, np.array(["007", "NA", "u1"], dtype=object))
    assert f.read_text() == "007\nNA\nu1\n"
    assert read_targets(f).tolist() == ["007", "NA", "u1"]


def _leftovers(directory: Path, keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


def test_write_listens_failure_keeps_previous_file(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text("old content\n")
    bad = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "count": ["1", "many"]})
    with pytest.raises(ValueError):
        write_listens(f, bad)
    assert f.read_text() == "old content\n"
    assert _leftovers(tmp_path, "l.txt") == []


class _Unprintable:
    def __format__(self, spec: str) -> str:
        raise RuntimeError("cannot format")


def test_write_targets_failure_midway_keeps_previous_file(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("old\n")
    ids = np.array(["a", "b", _Unprintable()], dtype=object)
    with pytest.raises(RuntimeError, match="cannot format"):
        write_targets(f, ids)
    assert f.read_text() == "old\n"
    assert _leftovers(tmp_path, "t.txt") == []


def test_write_listens_replaces_existing(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text("old content that is much longer than the new one\n")
    write_listens(f, pd.DataFrame({"user_id": ["a"], "item_id": ["b"], "count": [2]}))
    assert f.read_text() == "a b 2\n"
    assert _leftovers(tmp_path, "l.txt") == []


# tables -------------------------------------------------------------------------------------


def test_csv_named_columns_and_weight(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", "who,what,plays,extra\n007,NA,2,x\nu2,s2,3.5,y\n007,NA,1,z\n")
    data = read_table_interactions(f, user_col="who", item_col="what", weight_col="plays")
    assert data.users.to_list() == ["007", "u2"]
    assert data.items.to_list() == ["NA", "s2"]
    assert data.matrix.toarray().tolist() == [[3.0, 0.0], [0.0, 3.5]]
    counted = read_table_interactions(f, user_col="who", item_col="what")
    assert counted.matrix.toarray().tolist() == [[2.0, 0.0], [0.0, 1.0]]
    maxed = read_table_interactions(
        f, user_col="who", item_col="what", weight_col="plays", agg="max"
    )
    assert maxed.matrix.toarray().tolist() == [[2.0, 0.0], [0.0, 3.5]]


def test_tsv(tmp_path: Path) -> None:
    f = write(tmp_path / "t.tsv", "user_id\titem_id\n1\t2\n3\t4\n1\t4\n")
    data = read_table_interactions(f)
    assert data.users.to_list() == ["1", "3"]
    assert data.items.to_list() == ["2", "4"]
    assert data.nnz == 3


def test_csv_missing_column_names_available(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", "u,i,w\n1,2,3\n")
    with pytest.raises(DataFormatError, match="missing column") as info:
        read_table_interactions(f, user_col="user", item_col="i", weight_col="weight")
    msg = str(info.value)
    assert "'user'" in msg and "'weight'" in msg
    assert "['u', 'i', 'w']" in msg
    assert msg.startswith(str(f))


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ("u,i\n1,2\n,5\n", 3, "empty 'u'"),
        ("u,i\n1,2\n3,4\n6, \n", 4, "empty 'i'"),
        ('u,i\n1,2\n3,""\n', 3, "empty 'i'"),
        ("u,i\n\n1,2\n\n4,\n", 5, "empty 'i'"),  # blank lines still count as lines
        ('u,i\n"a\nb",x\nc,\n', 4, "empty 'i'"),  # a quoted newline spans two lines
    ],
)
def test_csv_empty_id_cell_line(tmp_path: Path, content: str, line: int, what: str) -> None:
    f = write(tmp_path / "t.csv", content)
    with pytest.raises(DataFormatError) as info:
        read_table_interactions(f, user_col="u", item_col="i")
    assert str(info.value) == f"{f}:{line}: {what}"


@pytest.mark.parametrize(
    ("value", "line"), [("0", 3), ("-1", 3), ("abc", 3), ("", 3), ("nan", 3), ("inf", 3)]
)
def test_csv_bad_weight_line(tmp_path: Path, value: str, line: int) -> None:
    f = write(tmp_path / "t.csv", f"u,i,w\n1,2,3\n4,5,{value}\n6,7,1\n")
    with pytest.raises(DataFormatError, match="not a positive number") as info:
        read_table_interactions(f, user_col="u", item_col="i", weight_col="w")
    assert str(info.value).startswith(f"{f}:{line}: 'w' value ")
    assert info.value.line == line


@pytest.mark.parametrize(
    ("content", "line", "found"),
    [
        ("u,i,w\n1,2,3\n4,5\n6,7,8\n", 3, 2),
        ("u,i,w\n1,2,3\n6,7,8\n4,5,6,7\n", 4, 4),
    ],
)
def test_csv_ragged_row(tmp_path: Path, content: str, line: int, found: int) -> None:
    f = write(tmp_path / "t.csv", content)
    with pytest.raises(DataFormatError) as info:
        read_table_interactions(f, user_col="u", item_col="i")
    assert str(info.value) == f"{f}:{line}: expected 3 fields, found {found}"


def test_tsv_ragged_row(tmp_path: Path) -> None:
    f = write(tmp_path / "t.tsv", "u\ti\n1\t2\n3\n")
    with pytest.raises(DataFormatError, match=r":3: expected 2 fields, found 1"):
        read_table_interactions(f, user_col="u", item_col="i")


def test_csv_header_only(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", "user_id,item_id\n")
    with pytest.raises(DataFormatError, match="empty"):
        read_table_interactions(f)


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame({"u": [1, 2, 1], "i": ["NA", "x", "NA"], "w": [1.0, 2.0, 0.5]})
    f = tmp_path / f"t{suffix}"
    df.to_parquet(f)
    data = read_table_interactions(f, user_col="u", item_col="i", weight_col="w")
    assert data.users.to_list() == ["1", "2"]
    assert data.items.to_list() == ["NA", "x"]
    assert data.matrix.toarray().tolist() == [[1.5, 0.0], [0.0, 2.0]]


@pytest.mark.parametrize("bad", [np.nan, -2.0, 0.0, np.inf])
def test_parquet_bad_weight_row(tmp_path: Path, bad: float) -> None:
    df = pd.DataFrame(
        {"u": ["a", "b", "c", "d"], "i": ["x", "y", "z", "z"], "w": [1.0, 1.0, bad, 1.0]}
    )
    f = tmp_path / "t.parquet"
    df.to_parquet(f)
    with pytest.raises(DataFormatError, match="not a positive number") as info:
        read_table_interactions(f, user_col="u", item_col="i", weight_col="w")
    assert str(info.value).startswith(f"{f}: row 2: 'w' value ")
    assert info.value.line is None


def test_parquet_null_id_and_missing_column(tmp_path: Path) -> None:
    f = tmp_path / "t.parquet"
    pd.DataFrame({"u": ["a", None], "i": ["x", "y"]}).to_parquet(f)
    with pytest.raises(DataFormatError, match="row 1: empty 'u'"):
        read_table_interactions(f, user_col="u", item_col="i")
    with pytest.raises(DataFormatError, match=r"missing column.*\['u', 'i'\]"):
        read_table_interactions(f, user_col="u", item_col="item")


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    f = write(tmp_path / "t.json", "{}")
    with pytest.raises(DataFormatError, match="unknown table format '.json'") as info:
        read_table_interactions(f)
    assert ".csv" in str(info.value) and ".parquet" in str(info.value)
    with pytest.raises(DataFormatError, match="no such file"):
        read_table_interactions(tmp_path / "nope.csv")


def test_no_temp_files_left_by_readers(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "a b 1\n")
    read_listens(f)
    assert os.listdir(tmp_path) == ["l.txt"]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ({"user_id": ["u 1"], "item_id": ["s"], "count": [1]}, "without whitespace"),
        ({"user_id": ["u"], "item_id": [""], "count": [1]}, "non-empty"),
        ({"user_id": ["u"], "item_id": ["s"], "count": [2.5]}, "positive whole number"),
        ({"user_id": ["u"], "item_id": ["s"], "count": [0]}, "positive whole number"),
        ({"user_id": ["u"], "item_id": ["s"], "count": [float("nan")]}, "positive whole number"),
    ],
)
def test_write_listens_refuses_what_cannot_be_read_back(tmp_path: Path, frame, reason) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(DataFormatError, match=reason):
        write_listens(target, pd.DataFrame(frame))
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    import os
    import stat

    write_listens(
        tmp_path / "out.txt", pd.DataFrame({"user_id": ["u"], "item_id": ["s"], "count": [1]})
    )
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask


def test_tsv_kind_on_a_dat_file_reports_the_right_line(tmp_path: Path) -> None:
    path = tmp_path / "user_artists.dat"
    path.write_text("userID\tartistID\tweight\n1\t2\t3\n\n1\t3\t-4\n")
    with pytest.raises(DataFormatError, match=r"user_artists\.dat:4: 'weight' value"):
        read_table_interactions(
            path, user_col="userID", item_col="artistID", weight_col="weight", kind="tsv"
        )
