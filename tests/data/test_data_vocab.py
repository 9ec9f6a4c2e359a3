"""IdMap: the vocabulary between external ids and int32 indices."""

from __future__ import annotations

import numpy as np
import pytest

from segue.data.vocab import IdMap
from segue.exceptions import ParameterError, SegueError, UnknownIdError


@pytest.fixture
def songs() -> IdMap:
    return IdMap(["s0", "00123", "NA", "null", "späť"], kind="song")


def test_ids_and_len(songs: IdMap) -> None:
    assert len(songs) == 5
    assert songs.to_list() == ["s0", "00123", "NA", "null", "späť"]
    assert songs.ids.dtype == object
    assert not songs.ids.flags.writeable
    with pytest.raises(ValueError):
        songs.ids[0] = "x"
    assert "NA" in songs and "00123" in songs
    assert "123" not in songs and None not in songs


def test_numbers_known_ids_int32(songs: IdMap) -> None:
    idx = songs.numbers(["null", "s0", "00123", "späť", "NA"])
    assert idx.dtype == np.int32
    assert idx.tolist() == [3, 0, 1, 4, 2]


def test_numbers_scalar_gives_one_element(songs: IdMap) -> None:
    idx = songs.numbers("NA")
    assert idx.shape == (1,) and idx.dtype == np.int32 and idx[0] == 2


def test_numbers_empty(songs: IdMap) -> None:
    idx = songs.numbers([])
    assert idx.shape == (0,) and idx.dtype == np.int32


def test_numbers_raise_lists_unknown_ids(songs: IdMap) -> None:
    with pytest.raises(UnknownIdError) as info:
        songs.numbers(["s0", "ghost", "123", "NA"])
    err = info.value
    assert isinstance(err, SegueError) and isinstance(err, KeyError)
    assert err.kind == "song"
    assert err.ids == ["ghost", "123"]
    assert err.total == 2
    msg = str(err)
    assert msg.startswith("2 unknown song id(s)")
    assert "'ghost'" in msg and "'123'" in msg
    assert "more" not in msg


def test_numbers_raise_is_default_and_truncates_long_lists(songs: IdMap) -> None:
    unknown = [f"x{i}" for i in range(8)]
    with pytest.raises(UnknownIdError) as info:
        songs.numbers(unknown)
    assert info.value.total == 8
    assert info.value.ids == unknown[:5]
    assert "and 3 more" in str(info.value)
    assert "'x5'" not in str(info.value)


def test_numbers_negative(songs: IdMap) -> None:
    idx = songs.numbers(["ghost", "NA", "s0", "123"], missing="negative")
    assert idx.dtype == np.int32
    assert idx.tolist() == [-1, 2, 0, -1]


def test_numbers_bad_missing_mode(songs: IdMap) -> None:
    with pytest.raises(ParameterError, match="missing"):
        songs.numbers(["s0"], missing="skip")  # type: ignore[arg-type]


def test_lookup_roundtrip_and_minus_one(songs: IdMap) -> None:
    out = songs.lookup(np.array([4, -1, 0, 2], dtype=np.int32))
    assert out.dtype == object
    assert out.tolist() == ["späť", None, "s0", "NA"]
    idx = songs.numbers(songs.ids)
    assert songs.lookup(idx).tolist() == songs.to_list()


def test_lookup_keeps_shape(songs: IdMap) -> None:
    out = songs.lookup(np.array([[0, 1], [-1, 3]]))
    assert out.shape == (2, 2)
    assert out.tolist() == [["s0", "00123"], [None, "null"]]


def test_lookup_out_of_range(songs: IdMap) -> None:
    with pytest.raises(ParameterError, match="out of range"):
        songs.lookup(np.array([0, 5]))


def test_ids_must_be_unique() -> None:
    with pytest.raises(ParameterError, match="unique") as info:
        IdMap(["a", "b", "a", "c", "b"], kind="user")
    assert "user" in str(info.value)
    assert "'a'" in str(info.value) and "'b'" in str(info.value)


def test_ids_must_be_one_dimensional() -> None:
    with pytest.raises(ParameterError, match="one-dimensional"):
        IdMap(np.array([["a", "b"], ["c", "d"]], dtype=object))


def test_accepts_iterator() -> None:
    m = IdMap(iter(["x", "y"]))
    assert m.to_list() == ["x", "y"]


def test_factorize_order_of_first_appearance() -> None:
    vocab, codes = IdMap.factorize(["b", "a", "b", "c", "a", "007", "7"], kind="user")
    assert vocab.to_list() == ["b", "a", "c", "007", "7"]
    assert vocab.kind == "user"
    assert codes.dtype == np.int32
    assert codes.tolist() == [0, 1, 0, 2, 1, 3, 4]
    assert vocab.lookup(codes).tolist() == ["b", "a", "b", "c", "a", "007", "7"]


def test_factorize_string_na_is_an_id() -> None:
    vocab, codes = IdMap.factorize(["NA", "null", "NA", "nan"])
    assert vocab.to_list() == ["NA", "null", "nan"]
    assert codes.tolist() == [0, 1, 0, 2]


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_factorize_rejects_missing_values(missing: object) -> None:
    with pytest.raises(ParameterError, match="missing"):
        IdMap.factorize(["a", missing, "b"])


def test_factorize_empty() -> None:
    vocab, codes = IdMap.factorize([])
    assert len(vocab) == 0 and codes.dtype == np.int32 and codes.shape == (0,)


def test_equality_and_hash() -> None:
    a = IdMap(["x", "y", "z"], kind="item")
    b = IdMap(np.array(["x", "y", "z"]), kind="item")
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert a != IdMap(["x", "z", "y"])  # same ids, other order: other indices
    assert a != IdMap(["x", "y"])
    assert a != IdMap(["x", "y", "z", "w"])
    assert (a == ["x", "y", "z"]) is False  # NotImplemented -> identity comparison
    assert a == a


def test_repr_mentions_kind_and_size() -> None:
    r = repr(IdMap(["a", "b", "c", "d"], kind="user"))
    assert "user" in r and "n=4" in r and "..." in r


def test_the_callers_array_is_not_frozen() -> None:
    ids = np.array(["a", "b"], dtype=object)
    IdMap(ids)
    ids[0] = "c"  # still writable
    assert ids[0] == "c"
