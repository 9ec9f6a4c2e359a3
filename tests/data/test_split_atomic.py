"""Split folders are written whole or not at all (issue 13, item 5).

An interrupted split used to leave new training listens beside the previous answers (90 % of the
answer rows in the training data). Every split writer now writes its folder through
:func:`segue._atomic.atomic_dir`: these tests crash a run after its first file and check that the
previous folder is unchanged and nothing is left beside it.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import segue.data.melon_split as melon_split
import segue.data.split as split_module
from segue._atomic import MARKER, OutputError, segue_output_kind
from segue.data.melon_split import split_melon
from segue.data.split import split_listens, write_listen_split


def listens(n_users: int = 40, per_user: int = 12) -> pd.DataFrame:
    rows = [
        (f"u{u}", f"s{(u * 7 + i) % 60}", 1 + (u + i) % 4)
        for u in range(n_users)
        for i in range(per_user)
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "count"])


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


def test_listen_split_is_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "val"
    write_listen_split(split_listens(listens(), seed=0), out)
    assert sorted(os.listdir(out)) == [
        MARKER,
        "answers.txt",
        "listen_count.txt",
        "target_users.txt",
    ]
    assert segue_output_kind(out) == "listens-split"
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # not mkdtemp's 0700
    # a second split replaces the first
    write_listen_split(split_listens(listens(), seed=1), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val"]


def test_listen_split_crash_after_the_first_file_keeps_the_old_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "val"
    write_listen_split(split_listens(listens(), seed=0), out)
    before = snapshot(tmp_path)
    written: list[Path] = []
    real = split_module.write_listens

    def crash_after_first(path: Path, df: pd.DataFrame) -> None:
        real(path, df)
        written.append(path)

    def crash(path: Path, ids: np.ndarray) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(split_module, "write_listens", crash_after_first)
    monkeypatch.setattr(split_module, "write_targets", crash)
    with pytest.raises(RuntimeError, match="disk gone"):
        write_listen_split(split_listens(listens(), seed=1), out)
    assert [p.name for p in written] == ["listen_count.txt"]  # the new file existed...
    assert snapshot(tmp_path) == before  # ...but never reached the folder; no temporary left


KILLED_SPLIT = """
import os, signal, sys
import pandas as pd
import segue.data.split as split_module
from segue.data.split import split_listens, write_listen_split

real = split_module.write_listens
def write_then_die(path, df):
    real(path, df)
    os.kill(os.getpid(), signal.SIGKILL)  # killed just after listen_count.txt is written
split_module.write_listens = write_then_die
df = pd.read_csv(sys.argv[1])
write_listen_split(split_listens(df, seed=1), sys.argv[2])
"""


def test_listen_split_killed_mid_write_keeps_the_old_folder(tmp_path: Path) -> None:
    """The issue's reproduction: SIGKILL just after the new listen_count.txt is written."""
    out = tmp_path / "val"
    frame = listens()
    write_listen_split(split_listens(frame, seed=0), out)
    source = tmp_path / "listens.csv"
    frame.to_csv(source, index=False)
    before = snapshot(out)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SPLIT, str(source), str(out)])
    assert proc.wait(timeout=120) == -signal.SIGKILL
    assert snapshot(out) == before  # old answers still match old training listens
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".val.{proc.pid}-")
    # the next run removes what the killed one left, then writes
    write_listen_split(split_listens(frame, seed=2), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["listens.csv", "val"]


def test_listen_split_refuses_the_input_and_user_folders(tmp_path: Path) -> None:
    source = tmp_path / "listen_count.txt"
    source.write_text("u1 s1 1\n")
    result = split_listens(listens(), seed=0)
    with pytest.raises(OutputError, match="listen_count.txt: is the input; choose a new --out"):
        write_listen_split(result, source, source=source)
    with pytest.raises(OutputError, match="it is a file, not a segue output directory"):
        write_listen_split(result, source)  # even when not told it is the input
    with pytest.raises(OutputError, match="holds the input"):
        write_listen_split(result, tmp_path, source=source)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "answers.txt").write_text("my answers")
    with pytest.raises(OutputError, match="not a segue output"):
        write_listen_split(result, mine)
    assert source.read_text() == "u1 s1 1\n"
    assert (mine / "answers.txt").read_text() == "my answers"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["listen_count.txt", "mine"]


def test_listen_split_replaces_a_split_of_an_earlier_version(tmp_path: Path) -> None:
    out = tmp_path / "val"
    out.mkdir()
    for name in ("listen_count.txt", "target_users.txt", "answers.txt"):
        (out / name).write_text("old\n")
    write_listen_split(split_listens(listens(), seed=0), out)
    assert (out / "answers.txt").read_text() != "old\n" and (out / MARKER).is_file()


def write_melon(folder: Path, n_playlists: int = 300) -> Path:
    """A small Melon train.json with its song_meta.json."""
    folder.mkdir(parents=True, exist_ok=True)
    playlists = [
        {
            "id": i,
            "plylst_title": f"list {i}",
            "tags": [f"t{i % 7}", f"t{i % 5 + 7}"],
            "songs": [(i * 13 + k) % 500 for k in range(4 + i % 9)],
            "like_cnt": i % 11,
            "updt_date": "2020-01-01 00:00:00.000",
        }
        for i in range(n_playlists)
    ]
    (folder / "train.json").write_text(json.dumps(playlists), encoding="utf-8")
    meta = [{"id": s, "artist_id_basket": [s % 50], "song_gn_gnr_basket": []} for s in range(500)]
    (folder / "song_meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder / "train.json"


@pytest.fixture(scope="module")
def melon_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_melon(tmp_path_factory.mktemp("melon")).parent


def test_melon_split_crash_after_the_first_file_keeps_the_old_folder(
    melon_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "val"
    split_melon(melon_source / "train.json", out, n_questions=30, seed=0)
    assert segue_output_kind(out) == "melon-split"
    before = snapshot(tmp_path)
    real = melon_split.write_melon_json
    calls: list[str] = []

    def crash_on_second(path: Path, records: Any) -> Path:
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise OSError("disk gone")
        return real(path, records)

    monkeypatch.setattr(melon_split, "write_melon_json", crash_on_second)
    with pytest.raises(OSError, match="disk gone"):
        split_melon(melon_source / "train.json", out, n_questions=60, seed=1)
    assert calls == ["train.json", "questions.json"]
    assert snapshot(tmp_path) == before


def test_melon_split_refuses_a_folder_it_did_not_write(melon_source: Path, tmp_path: Path) -> None:
    (tmp_path / "questions.json").write_text(json.dumps([]))
    (tmp_path / "my_model_notes.md").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match="not a segue output"):
        split_melon(melon_source / "train.json", tmp_path, n_questions=30)
    assert snapshot(tmp_path) == before
