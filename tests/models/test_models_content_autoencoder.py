"""The content autoencoder: contract, learning from metadata, densification, song tags."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from contract import RecommenderContract

from conftest import planted_interactions
from segue import Interactions, ParameterError, load_model, save_model
from segue.data.playlists import Playlists
from segue.inference import continue_playlists
from segue.inference.densify import Densifier
from segue.inference.encode import playlist_interactions
from segue.metrics.ranking import ndcg_at_k
from segue.models.content_autoencoder import ContentAutoencoder, song_features
from segue.models.knn import UserKNN
from segue.models.popularity import MostPopular

pytest.importorskip("torch")
pytest.importorskip("faiss")


def planted_playlists(
    seed: int = 0, n_playlists: int = 40, n_songs: int = 60, n_cold: int = 0, tags: bool = False
) -> Playlists:
    """Two genres (even / odd songs); each playlist holds songs of one genre only.

    Songs carry a genre, an artist (5 songs each, one genre), a release date; ``n_cold``
    more songs are in the track table but in no playlist (song ``60 + j`` has song ``j``'s
    metadata, for ``n_songs=60``). Popularity knows no genre; metadata
    does. With ``tags``, even playlists are tagged "even", odd ones "odd".
    """
    rng = np.random.default_rng(seed)
    total = n_songs + n_cold
    songs = np.arange(total)
    tracks = pd.DataFrame(
        {
            "track": [f"s{i:03d}" for i in songs],
            "artist": [f"a{i % 2}{(i // 2) % 6}" for i in songs],
            "genres": [["GN01"] if i % 2 == 0 else ["GN02"] for i in songs],
            # cold song 60 + j has song j's metadata exactly (its twin)
            "issue_date": [20000101 + 10000 * ((i % 60) // 2) + 100 * (i % 3) for i in songs],
        }
    )
    pids, pos, track = [], [], []
    for p in range(n_playlists):
        own = np.arange(p % 2, n_songs, 2)
        chosen = rng.choice(own, size=10, replace=False)
        pids += [p] * len(chosen)
        pos += list(range(len(chosen)))
        track += [f"s{i:03d}" for i in chosen]
    table = {"pid": list(range(n_playlists)), "name": [""] * n_playlists}
    if tags:
        table["tags"] = [["even"] if p % 2 == 0 else ["odd"] for p in range(n_playlists)]
    return Playlists(
        pd.DataFrame(table),
        pd.DataFrame({"pid": pids, "pos": pos, "track": track}),
        tracks,
    )


def as_playlists(data: Interactions) -> Interactions:
    """Listens of the planted users as playlists, with metadata: genre and artist by parity."""
    coo = data.matrix.tocoo()
    songs = data.items.ids
    number = np.array([int(s[4:]) for s in songs])
    playlists = Playlists(
        pd.DataFrame({"pid": data.users.ids, "name": [""] * len(data.users)}),
        pd.DataFrame({"pid": data.users.ids[coo.row], "pos": 0, "track": songs[coo.col]}),
        pd.DataFrame(
            {
                "track": songs,
                "genres": [["GN01"] if n % 2 == 0 else ["GN02"] for n in number],
                "artist": [f"a{n % 2}{n // 6}" for n in number],
            }
        ),
    )
    return playlist_interactions(playlists)


def tiny(**params) -> ContentAutoencoder:
    base = {"hidden": [16, 16, 32], "epochs": 2, "batch_size": 16, "device": "cpu"}
    return ContentAutoencoder(**{**base, **params})


class TestContentAutoencoderContract(RecommenderContract):
    folds_in_exactly = True

    def make_model(self) -> ContentAutoencoder:
        return tiny(n_neighbors=10)

    @pytest.fixture
    def data(self) -> Interactions:
        return as_playlists(planted_interactions())

    def other_data(self) -> Interactions:
        return as_playlists(planted_interactions(seed=7, n_users=25, n_items=40))


def test_features_read_the_metadata():
    playlists = planted_playlists(tags=True)
    data = playlist_interactions(playlists, with_tags=True)
    features, fields = song_features(playlists, data.items)
    assert fields == {"artist": 12, "genre": 2, "year": 30, "month": 3, "tag": 2}
    assert features.shape == (len(data.items), sum(fields.values()))
    # every song: artist, genre, year, month, tag
    assert (features.sum(axis=1)[data.items.columns(0)] == 5).all()


def test_needs_metadata():
    with pytest.raises(ParameterError, match="needs song metadata"):
        tiny().fit(Interactions.from_arrays(["u1", "u2"], ["a", "b"]))
    with pytest.raises(ParameterError, match="hidden"):
        tiny(hidden=[]).validate_params()
    with pytest.raises(ParameterError, match="drop probability"):
        tiny(dropout=1.0).validate_params()


def test_learns_from_metadata_and_beats_popularity():
    """Held-out playlists: the last 5 songs of each are found from the first 5 by metadata."""
    train = playlist_interactions(planted_playlists(n_playlists=40))
    test = planted_playlists(seed=3, n_playlists=30)
    model = tiny(epochs=5, fields="genre,artist").fit(train)  # dates carry no taste here
    pop = MostPopular().fit(train)
    seeds = test.entries[test.entries["pos"] < 5]
    hidden = test.entries[test.entries["pos"] >= 5]
    queries = Interactions.from_arrays(seeds["pid"], seeds["track"])
    truth = Interactions.from_arrays(hidden["pid"], hidden["track"]).align(model.items_)[0]
    results, genre = {}, {}
    parity = np.array([int(p) % 2 for p in queries.users.ids])
    for name, m in (("content", model), ("pop", pop)):
        recs = m.recommend(queries.users.ids, 10, history=queries)
        results[name] = np.nanmean(ndcg_at_k(recs.items, truth.matrix, 10))
        songs = np.array([[int(s[1:]) % 2 for s in m.items_.ids[row]] for row in recs.items])
        genre[name] = (songs == parity[:, None]).mean()  # share of the query's genre
    # the hidden songs are a random 5 of the 25 other songs of the genre: the ceiling is ~0.4
    assert results["content"] > 1.5 * results["pop"], results
    assert genre["content"] > 0.85 and genre["pop"] < 0.6, genre


def test_cold_songs_are_in_the_catalogue_and_reachable():
    playlists = planted_playlists(n_cold=10)
    data = playlist_interactions(playlists)
    model = tiny().fit(data)
    cold = {f"s{i:03d}" for i in range(60, 70)}
    assert cold <= set(model.items_.ids.tolist()) and not cold & set(data.items.ids.tolist())
    # a query of even songs reaches even cold songs through content neighbours
    query = Interactions.from_arrays(["q"] * 4, ["s000", "s002", "s004", "s006"])
    recs = model.recommend(["q"], 40, history=query)
    listed = set(model.items_.ids[recs.items[0]].tolist())
    assert {"s060", "s062", "s064"} & listed


def test_densification_adds_seed_neighbours_and_reaches_cold_songs(tmp_path):
    playlists = planted_playlists(n_cold=10)
    data = playlist_interactions(playlists)
    content = tiny().fit(data)
    cf = UserKNN().fit(data)
    seeds = ["s000", "s010"]
    query = Playlists(
        pd.DataFrame({"pid": [99], "name": [""]}),
        pd.DataFrame({"pid": [99, 99], "pos": [0, 1], "track": seeds}),
        pd.DataFrame({"track": seeds}),
    )
    rows = playlist_interactions(query, items=cf.items_).matrix
    dens = Densifier(content, size=8, per_seed=3, cold_slots=5)
    out = dens.expand(rows, cf.items_)
    assert out.rows.shape == rows.shape and out.rows[:, rows.indices].sum() == 2
    seed_idx = content.items_.numbers(seeds)
    near, _ = content.neighbours(seed_idx, 10)
    added = set(cf.items_.ids[np.setdiff1d(out.rows.indices, rows.indices)].tolist())
    cold_added = set(out.cold[0].tolist())
    assert out.added[0] + len(cold_added) == 6  # 3 per seed: 2 + 6 = 8 songs
    assert added | cold_added <= set(content.items_.ids[near.ravel()].tolist())
    assert not (added | cold_added) & set(seeds)
    # a long query gets nothing added
    full = Densifier(content, size=2, per_seed=3).expand(rows, cf.items_)
    assert full.rows.nnz == 2 and full.added[0] == 0
    assert "s060" in cold_added  # s000's twin, in no training playlist
    # cold neighbours take the last places of the list when asked
    plain = next(continue_playlists(cf, query, 20)).tracks[0]
    dense = Densifier(content, size=30, per_seed=3, cold_slots=5)
    got = next(continue_playlists(cf, query, 20, densify=dense)).tracks[0]
    assert len(got) == 20 and not set(seeds) & set(got) and len(set(got)) == 20
    cold = [t for t in got if int(t[1:]) >= 60]
    assert cold and got[-len(cold) :] == cold and not [t for t in plain if int(t[1:]) >= 60]
    # the same neighbours after save/load
    save_model(content, tmp_path / "content")
    loaded = load_model(tmp_path / "content")
    again = next(continue_playlists(cf, query, 20, densify=Densifier(loaded, 30, 3, 1.0, 5)))
    assert again.tracks[0] == got


def test_song_tags_follow_the_recommended_songs():
    playlists = planted_playlists(tags=True)
    data = playlist_interactions(playlists, with_tags=True)
    cf = UserKNN().fit(data)
    query = Playlists(
        pd.DataFrame({"pid": [7, 8], "name": ["", ""], "tags": [[], ["odd"]]}),
        pd.DataFrame({"pid": [7, 7, 8], "pos": [0, 1, 0], "track": ["s000", "s002", "s001"]}),
        pd.DataFrame({"track": ["s000", "s002", "s001"]}),
    )
    batch = next(continue_playlists(cf, query, 10, n_tags=2, tags_from="songs"))
    assert batch.tags[0][0] == "even"
    assert "odd" not in batch.tags[1]  # a seed tag never comes back
    with pytest.raises(ParameterError, match="tags_from"):
        next(continue_playlists(cf, query, 10, n_tags=2, tags_from="nope"))


def test_cli_densify_and_song_tags(tmp_path):
    """segue train --model content-autoencoder; segue recommend --densify DIR --tags-from songs."""
    from typer.testing import CliRunner

    from segue.cli.main import app

    def ok(*args: object) -> str:
        res = CliRunner().invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
        return res.output

    gen, val = tmp_path / "gen", tmp_path / "val"
    ok("generate", "melon", "--out", gen, "--playlists", 300, "--songs", 600, "--tags", 50)
    ok("split", "melon", gen / "train.json", "--out", val, "--seed", 0)
    params = ["--param", "hidden=[8,8,16]", "--param", "epochs=1", "--param", "device=cpu"]
    ok("train", "--melon", val, "--model", "content-autoencoder", "--out", tmp_path / "c", *params)
    ok("train", "--melon", val, "--model", "userknn", "--out", tmp_path / "k")
    questions = val / "questions.json"
    ok("recommend", tmp_path / "k", "--questions", questions, "--out", tmp_path / "plain.json")
    out = ok(
        "recommend", tmp_path / "k", "--questions", questions, "--out", tmp_path / "d.json",
        "--densify", tmp_path / "c", "--densify-size", 50, "--tags-from", "songs",
    )  # fmt: skip
    assert "playlists ->" in out
    plain = json.loads((tmp_path / "plain.json").read_text())
    dense = json.loads((tmp_path / "d.json").read_text())
    assert [a["id"] for a in plain] == [a["id"] for a in dense]
    assert all(len(a["songs"]) == 100 and len(a["tags"]) == 10 for a in dense)
    assert any(a["songs"] != b["songs"] for a, b in zip(plain, dense, strict=True))
    res = CliRunner().invoke(app, ["recommend", str(tmp_path / "k"), "--questions",
                                   str(questions), "--out", str(tmp_path / "x.json"),
                                   "--densify", str(tmp_path / "k")])  # fmt: skip
    assert res.exit_code == 1 and "no content neighbours" in res.output


def test_densified_adapter_equals_continuation_and_round_trips(tmp_path):
    """The 'densified' first-stage adapter gives continue_playlists(densify=...)'s lists."""
    from segue.models.densified import Densified

    data = playlist_interactions(planted_playlists(n_cold=10, tags=True), with_tags=True)
    params = {"hidden": [16, 16, 32], "epochs": 2, "batch_size": 16, "device": "cpu"}
    content = {"model": "content-autoencoder", "params": params}
    model = Densified({"model": "userknn"}, content, size=12).fit(data)
    query = planted_playlists(seed=5, n_playlists=6, tags=True)
    query = Playlists(query.playlists, query.entries[query.entries["pos"] < 3], query.tracks)
    dens = Densifier(model.content_, size=12)
    want = next(continue_playlists(model.cf_, query, 15, n_tags=1, densify=dens))
    got = next(continue_playlists(model, query, 15, n_tags=1))
    assert got.tracks == want.tracks and got.tags == want.tags
    assert got.tracks != next(continue_playlists(model.cf_, query, 15)).tracks
    save_model(model, tmp_path / "m")
    assert next(continue_playlists(load_model(tmp_path / "m"), query, 15)).tracks == got.tracks
    with pytest.raises(ParameterError, match="content"):
        Densified({"model": "userknn"}, {"nope": 1}).validate_params()
