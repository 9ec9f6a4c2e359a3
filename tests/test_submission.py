"""Challenge submission files: round trips, atomic writes and every rejection path."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from segue.exceptions import DataFormatError, ParameterError
from segue.metrics.submission import (
    MelonResult,
    read_melon_results,
    read_mpd_submission,
    write_melon_results,
    write_mpd_submission,
)

N = 5  # tracks per line in most MPD tests (the real challenge: 500)


def uri(i: int) -> str:
    return f"spotify:track:{i:022d}"  # 22 base62 characters, like the real ids


def tracks(start: int, n: int = N) -> list[str]:
    return [uri(i) for i in range(start, start + n)]


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


TEAM = "team_info,segue,main,segue@example.org"


def line(pid: int | str, uris: list[str], sep: str = ",") -> str:
    return sep.join([str(pid), *uris])


def reject(path: Path, match: str, line_no: int | None, **kwargs) -> DataFormatError:
    kwargs.setdefault("n", N)
    with pytest.raises(DataFormatError, match=match) as info:
        read_mpd_submission(path, **kwargs)
    assert info.value.path == str(path)
    assert info.value.line == line_no
    return info.value


# ------------------------------------------------------------------------------------------
# MPD: writing and round trips
# ------------------------------------------------------------------------------------------


def test_mpd_round_trip_with_the_2018_team_info(tmp_path: Path) -> None:
    rows = [(1000, tracks(0)), (1001, tracks(100))]
    out = write_mpd_submission(tmp_path / "sub" / "submission.csv", rows, n=N)
    text = out.read_text(encoding="utf-8").splitlines()
    assert text[0] == "team_info,segue,main,segue@example.org"
    assert text[1] == line(1000, tracks(0))
    got = read_mpd_submission(out, expected_pids=[1000, 1001], n=N)
    assert got == {1000: tracks(0), 1001: tracks(100)}
    assert list(got) == [1000, 1001]


def test_mpd_full_size_round_trip(tmp_path: Path) -> None:
    rows = [(pid, tracks(pid * 1000, 500)) for pid in range(20)]
    out = write_mpd_submission(tmp_path / "s.csv", rows)  # default n = 500
    assert read_mpd_submission(out, expected_pids=range(20)) == dict(rows)


def test_mpd_aicrowd_team_info_and_creative_track(tmp_path: Path) -> None:
    rows = [(np.int64(7), tracks(0))]  # NumPy pids are accepted
    plain = write_mpd_submission(tmp_path / "a.csv", rows, track=None, team_name="My Team", n=N)
    assert plain.read_text().splitlines()[0] == "team_info,My Team,segue@example.org"
    assert read_mpd_submission(plain, n=N) == {7: tracks(0)}
    creative = write_mpd_submission(tmp_path / "c.csv", rows, track="creative", n=N)
    assert creative.read_text().splitlines()[0] == "team_info,segue,creative,segue@example.org"
    assert read_mpd_submission(creative, n=N) == {7: tracks(0)}


def test_mpd_gzip_round_trip_is_reproducible(tmp_path: Path) -> None:
    rows = [(1, tracks(0)), (2, tracks(10))]
    first = write_mpd_submission(tmp_path / "a.csv.gz", rows, n=N).read_bytes()
    second = write_mpd_submission(tmp_path / "b.csv.gz", rows, n=N).read_bytes()
    assert first[:2] == b"\x1f\x8b" and first == second  # fixed gzip timestamp
    assert gzip.decompress(first).decode().startswith(TEAM + "\n")
    assert read_mpd_submission(tmp_path / "a.csv.gz", n=N) == dict(rows)
    # a gzipped file is recognised by its content, whatever its name
    (tmp_path / "a.csv.gz").rename(tmp_path / "renamed.csv")
    assert read_mpd_submission(tmp_path / "renamed.csv", n=N) == dict(rows)


def test_mpd_reader_accepts_the_official_sample_layout(tmp_path: Path) -> None:
    # spaces after commas, comments (also before team_info), blank lines, CRLF endings
    path = tmp_path / "sample.csv"
    body = "\r\n".join(
        [
            "# a comment before the team line",
            "",
            "team_info, my awesome team name, main, my_awesome_team@email.com",
            "   ",
            "  # an indented comment",
            line(5, tracks(0), sep=", "),
            line(6, tracks(50), sep=" , "),
        ]
    )
    path.write_bytes(body.encode("utf-8"))
    assert read_mpd_submission(path, n=N) == {5: tracks(0), 6: tracks(50)}


def test_mpd_reader_accepts_the_track_before_the_team_name(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", "team_info,creative,Team X,x@y.org", line(1, tracks(0)))
    assert read_mpd_submission(path, n=N) == {1: tracks(0)}


def test_mpd_seeds_and_expected_pids_pass_when_respected(tmp_path: Path) -> None:
    path = write_mpd_submission(tmp_path / "s.csv", [(1, tracks(0)), (2, tracks(10))], n=N)
    got = read_mpd_submission(
        path, n=N, expected_pids={1, 2}, seeds={1: {uri(99)}, 2: set(), 3: {uri(0)}}
    )
    assert set(got) == {1, 2}


# ------------------------------------------------------------------------------------------
# MPD: every rejection of the reader
# ------------------------------------------------------------------------------------------


def test_mpd_rejects_a_missing_team_info_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", "# comment", line(1, tracks(0)))
    reject(path, "must start with 'team_info'", 2)


@pytest.mark.parametrize(
    ("team", "match"),
    [
        ("team_info,segue", "got 2 fields"),
        ("team_info,a,b,c,d", "got 5 fields"),
        ("team_info,segue,mian,segue@example.org", "none of the team fields is the track"),
        ("team_info,segue,not-an-email", "is not an address"),
        ("team_info,,segue@example.org", "empty team name"),
        ("team_info,segue,main,", "is not an address"),
    ],
)
def test_mpd_rejects_a_malformed_team_info_line(tmp_path: Path, team: str, match: str) -> None:
    path = write_lines(tmp_path / "s.csv", "", team, line(1, tracks(0)))
    reject(path, match, 2)


def test_mpd_rejects_an_empty_file(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", "# only a comment", "")
    reject(path, "the file is empty", None)


def test_mpd_rejects_a_second_team_info_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, tracks(0)), TEAM)
    reject(path, "a second team_info line", 3)


@pytest.mark.parametrize("pid", ["12a", "-3", "1.0", "", "x"])
def test_mpd_rejects_a_pid_that_is_not_an_integer(tmp_path: Path, pid: str) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(pid, tracks(0)))
    reject(path, "the pid must be a non-negative integer", 2)


@pytest.mark.parametrize("count", [N - 1, N + 1, 0])
def test_mpd_rejects_a_line_without_exactly_n_tracks(tmp_path: Path, count: int) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, tracks(0)), line(2, tracks(10, count)))
    reject(path, f"pid 2 has {count} tracks, exactly {N} are required", 3)


def test_mpd_rejects_a_repeated_track(tmp_path: Path) -> None:
    uris = tracks(0)
    uris[3] = uris[1]
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, uris))
    reject(path, rf"pid 1, track 4: {uris[1]} is listed twice", 2)


def test_mpd_rejects_a_seed_track(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, tracks(0)), line(2, tracks(10)))
    error = reject(path, "pid 2 recommends 1 of its seed track", 3, seeds={2: {uri(12), uri(99)}})
    assert uri(12) in str(error)


def test_mpd_rejects_a_repeated_pid(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, tracks(0)), "", line(1, tracks(10)))
    reject(path, r"pid 1 has a second line \(the first is line 2\)", 4)


def test_mpd_rejects_a_pid_not_in_the_challenge(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, tracks(0)), line(9, tracks(10)))
    reject(path, "pid 9 is not a challenge playlist", 3, expected_pids=[1, 2])


def test_mpd_rejects_missing_pids_with_their_count(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(3, tracks(0)))
    # pids 0-9 expected, only 3 answered: 9 missing, the first 5 named
    error = reject(path, "9 challenge playlist", None, expected_pids=range(10))
    assert "pid 0, 1, 2, 4, 5 and 4 more" in str(error)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("spotify:album:" + "a" * 22, "is not a spotify:track: URI"),
        ("spotify:track:" + "a" * 21, "is not a spotify:track: URI"),
        ("spotify:track:" + "a" * 21 + "!", "is not a spotify:track: URI"),
        ("6I9VzXrHxO9rA9A5euc8Ak", "is not a spotify:track: URI"),
        ("", "an empty field"),
    ],
)
def test_mpd_rejects_a_field_that_is_not_a_track_uri(tmp_path: Path, bad: str, match: str) -> None:
    uris = tracks(0)
    uris[2] = bad
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, uris))
    reject(path, f"pid 1, track 3: .*{match}", 2)


def test_mpd_rejects_a_trailing_comma(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.csv", TEAM, line(1, tracks(0)) + ",")
    reject(path, f"has {N + 1} tracks", 2)


def test_mpd_rejects_unreadable_files(tmp_path: Path) -> None:
    reject(tmp_path / "nope.csv", "no such file", None)
    bad_utf8 = tmp_path / "latin1.csv"
    bad_utf8.write_bytes((TEAM + "\n").encode() + b"1,caf\xe9\n")
    reject(bad_utf8, "not valid UTF-8", 2)
    broken_gz = tmp_path / "broken.csv.gz"
    broken_gz.write_bytes(gzip.compress((TEAM + "\n" + line(1, tracks(0)) + "\n").encode())[:30])
    reject(broken_gz, "cannot read the file", None)


# ------------------------------------------------------------------------------------------
# MPD: the writer refuses what the scorer would reject, and never leaves half a file
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "kwargs", "match"),
    [
        ([(1, tracks(0, N - 1))], {}, "4 tracks, the challenge needs 5"),
        ([(1, [uri(0)] * N)], {}, "is listed twice"),
        ([(1, [*tracks(0, N - 1), "spotify:track:x"])], {}, "not a spotify:track: URI"),
        ([(1, tracks(0)), (1, tracks(10))], {}, "pid 1 has a second row"),
        ([(True, tracks(0))], {}, "pid must be an integer"),
        ([(1.0, tracks(0))], {}, "pid must be an integer"),
        ([("1", tracks(0))], {}, "pid must be an integer"),
        ([(-1, tracks(0))], {}, "pid must be non-negative"),
        ([(1, tracks(0))], {"team_name": "a,b"}, "without commas"),
        ([(1, tracks(0))], {"team_name": ""}, "non-empty"),
        ([(1, tracks(0))], {"email": "nobody"}, "does not look like an address"),
        ([(1, tracks(0))], {"track": "side"}, "track must be"),
    ],
)
def test_mpd_writer_rejects(tmp_path: Path, rows: list, kwargs: dict, match: str) -> None:
    target = tmp_path / "s.csv"
    with pytest.raises(ParameterError, match=match):
        write_mpd_submission(target, rows, n=N, **kwargs)
    assert os.listdir(tmp_path) == []  # nothing written, no temporary file left


def test_mpd_writer_keeps_the_old_file_when_a_row_fails(tmp_path: Path) -> None:
    target = write_mpd_submission(tmp_path / "s.csv.gz", [(1, tracks(0))], n=N)
    before = target.read_bytes()

    def rows():
        yield 1, tracks(0)
        raise RuntimeError("recommender crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        write_mpd_submission(target, rows(), n=N)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["s.csv.gz"]


def test_mpd_writer_without_a_length_check(tmp_path: Path) -> None:
    out = write_mpd_submission(tmp_path / "s.csv", [(1, tracks(0, 3))], n=None)
    assert read_mpd_submission(out, n=3) == {1: tracks(0, 3)}


# ------------------------------------------------------------------------------------------
# Melon: round trips
# ------------------------------------------------------------------------------------------

SONGS, TAGS = 4, 2  # per playlist in most Melon tests (the real challenge: 100 and 10)


def melon_entry(pid: int, start: int = 0, tags: tuple[str, ...] = ("잔잔한", "rock")) -> dict:
    return {"id": pid, "songs": list(range(start, start + SONGS)), "tags": list(tags)}


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def reject_melon(path: Path, match: str, **kwargs) -> DataFormatError:
    kwargs.setdefault("n_songs", SONGS)
    kwargs.setdefault("n_tags", TAGS)
    with pytest.raises(DataFormatError, match=match) as info:
        read_melon_results(path, **kwargs)
    assert info.value.path == str(path)
    return info.value


def test_melon_round_trip_keeps_utf8_tags(tmp_path: Path) -> None:
    rows = [melon_entry(10), melon_entry(11, start=100, tags=("pop", "밤"))]
    out = write_melon_results(tmp_path / "res" / "results.json", rows, n_songs=SONGS, n_tags=TAGS)
    raw = out.read_bytes()
    assert "잔잔한".encode() in raw  # ensure_ascii=False: not \uc794...
    assert json.loads(raw.decode("utf-8")) == rows
    got = read_melon_results(out, n_songs=SONGS, n_tags=TAGS, expected_ids=[10, 11])
    assert got == {
        10: MelonResult([0, 1, 2, 3], ["잔잔한", "rock"]),
        11: MelonResult([100, 101, 102, 103], ["pop", "밤"]),
    }


def test_melon_full_size_round_trip_with_numpy_values(tmp_path: Path) -> None:
    rows = [
        {
            "id": np.int64(i),
            "songs": np.arange(i * 100, i * 100 + 100),
            "tags": [f"t{j}" for j in range(10)],
        }
        for i in range(5)
    ]
    out = write_melon_results(tmp_path / "results.json", rows)  # defaults: 100 songs, 10 tags
    got = read_melon_results(out, questions={i: (set(), set()) for i in range(5)})
    assert got[3].songs == list(range(300, 400)) and len(got) == 5


def test_melon_questions_pass_when_nothing_is_given_back(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", [melon_entry(1)])
    got = read_melon_results(path, n_songs=SONGS, n_tags=TAGS, questions={1: ({99, 100}, {"jazz"})})
    assert got[1].tags == ["잔잔한", "rock"]


# ------------------------------------------------------------------------------------------
# Melon: every rejection of the reader
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"songs": [0, 1, 2]}, "playlist id 2 \\(entry 1\\) has 3 songs, exactly 4"),
        ({"songs": [0, 1, 2, 3, 4]}, "has 5 songs, exactly 4"),
        ({"tags": ["a"]}, "has 1 tags, exactly 2"),
        ({"songs": [0, 1, 1, 3]}, "song 1 is recommended twice"),
        ({"tags": ["a", "a"]}, "tag 'a' is recommended twice"),
        ({"songs": [0, 1, 2, "3"]}, "'songs' must be a list of integer song ids"),
        ({"songs": [0, 1, 2, 3.0]}, "'songs' must be a list of integer song ids"),
        ({"songs": [0, 1, 2, True]}, "'songs' must be a list of integer song ids"),
        ({"songs": "0123"}, "'songs' must be a list"),
        ({"tags": ["a", 7]}, "'tags' must be a list of strings"),
    ],
)
def test_melon_rejects_a_bad_playlist(tmp_path: Path, change: dict, match: str) -> None:
    path = write_json(tmp_path / "r.json", [melon_entry(1), {**melon_entry(2), **change}])
    reject_melon(path, match)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (["not", "an", "object"], "^.*entry 1 is a JSON list, not an object"),
        ({"songs": [0, 1, 2, 3], "tags": ["a", "b"]}, "entry 1 has no 'id' key"),
        ({"id": 2, "tags": ["a", "b"]}, "playlist id 2 \\(entry 1\\) has no 'songs' key"),
        ({"id": 2, "songs": [0, 1, 2, 3]}, "has no 'tags' key"),
        ({**melon_entry(0), "id": "2"}, "playlist id '2' \\(entry 1\\) the id must be an integer"),
        ({**melon_entry(0), "id": True}, "the id must be an integer"),
    ],
)
def test_melon_rejects_a_malformed_entry(tmp_path: Path, entry: object, match: str) -> None:
    path = write_json(tmp_path / "r.json", [melon_entry(1), entry])
    reject_melon(path, match)


def test_melon_rejects_a_repeated_id(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", [melon_entry(1), melon_entry(2), melon_entry(1, 50)])
    reject_melon(
        path, r"playlist id 1 \(entry 2\) is a second entry for this id \(the first is entry 0\)"
    )


def test_melon_rejects_ids_that_do_not_match_the_questions(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", [melon_entry(1), melon_entry(7)])
    reject_melon(path, r"playlist id 7 \(entry 1\) is not a question playlist", expected_ids={1, 2})
    error = reject_melon(
        write_json(tmp_path / "s.json", [melon_entry(1)]),
        "2 question playlist\\(s\\) have no entry: id 2, 3",
        expected_ids={1, 2, 3},
    )
    assert error.line is None
    # the questions' ids are the expected ids by default
    reject_melon(
        path, "playlist id 7 \\(entry 1\\) is not a question playlist", questions={1: ((), ())}
    )


def test_melon_rejects_songs_and_tags_the_question_gave(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", [melon_entry(1), melon_entry(2, start=10)])
    questions = {1: ({50}, {"jazz"}), 2: ({12, 99}, set())}
    reject_melon(
        path,
        r"playlist id 2 \(entry 1\) recommends 1 song\(s\) the question gave: 12",
        questions=questions,
    )
    questions = {1: (set(), {"rock"}), 2: (set(), set())}
    reject_melon(
        path,
        r"playlist id 1 \(entry 0\) recommends 1 tag\(s\) the question gave: 'rock'",
        questions=questions,
    )


def test_melon_rejects_a_file_that_is_not_a_json_list(tmp_path: Path) -> None:
    reject_melon(tmp_path / "missing.json", "no such file")
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"id": 1,\n  "songs": [1, 2,, 3]}\n]', encoding="utf-8")
    error = reject_melon(broken, "not valid JSON")
    assert error.line == 3  # a syntax error has a meaningful line
    reject_melon(write_json(tmp_path / "obj.json", {"id": 1}), "must be a JSON list")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'[{"id": 1, "songs": [], "tags": ["caf\xe9"]}]')
    reject_melon(latin1, "not valid UTF-8")


# ------------------------------------------------------------------------------------------
# Melon: the writer
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{**melon_entry(1), "songs": [1, 2]}], "playlist id 1 \\(entry 0\\) has 2 songs"),
        ([{**melon_entry(1), "tags": ["x", "x"]}], "tag 'x' is recommended twice"),
        ([melon_entry(1), melon_entry(1)], "playlist id 1 \\(entry 1\\) is a second entry"),
        ([{"id": 1.5, "songs": [0, 1, 2, 3], "tags": ["a", "b"]}], "the id must be an integer"),
        ([{"songs": [0, 1, 2, 3], "tags": ["a", "b"]}], "entry 0 has no 'id' key"),
        ([[1, 2]], "entry 0 is a JSON list, not an object"),
    ],
)
def test_melon_writer_rejects(tmp_path: Path, rows: list, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        write_melon_results(tmp_path / "r.json", rows, n_songs=SONGS, n_tags=TAGS)
    assert os.listdir(tmp_path) == []


def test_melon_writer_keeps_the_old_file_when_it_fails(tmp_path: Path) -> None:
    target = write_melon_results(tmp_path / "r.json", [melon_entry(1)], n_songs=SONGS, n_tags=TAGS)
    before = target.read_bytes()
    with pytest.raises(ParameterError):
        write_melon_results(target, [melon_entry(1), melon_entry(1)], n_songs=SONGS, n_tags=TAGS)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.json"]
