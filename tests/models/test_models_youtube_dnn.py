import numpy as np
import pytest
from contract import RecommenderContract
from planted import held_out_ndcg, planted_holdout
from sequences import query_playlists, taste_playlists

from segue import MostPopular, ParameterError, load_model, save_model
from segue.inference import continue_playlists, playlist_interactions
from segue.models.registry import model_class
from segue.models.youtube_dnn import YouTubeDNN

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one thread is several times faster than two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**params) -> YouTubeDNN:
    base = dict(dim=8, hidden=[16], negatives=16, epochs=2, batch_size=16, validation_rows=0)
    return YouTubeDNN(**{**base, **params})


class TestYouTubeDNN(RecommenderContract):
    def make_model(self) -> YouTubeDNN:
        return tiny()


def test_registered_as_youtube_dnn() -> None:
    assert model_class("youtube-dnn") is YouTubeDNN


def test_learns_the_planted_groups() -> None:
    train, truth = planted_holdout()
    # fixed epochs: a holdout carved from these rows hides the popular songs too, which the
    # planted truth never holds, so stopping on it would favour the popularity prior
    model = YouTubeDNN(dim=16, hidden=[32], negatives=64, epochs=10, batch_size=16, lr=1e-2)
    model.set_params(validation_rows=0).fit(train)
    pop = held_out_ndcg(MostPopular().fit(train), train, truth)
    got = held_out_ndcg(model, train, truth)
    assert got > 3 * pop + 0.05, (got, pop)


def test_title_only_and_tags_only_queries_have_a_vector() -> None:
    train = playlist_interactions(taste_playlists(), with_tags=True, with_titles=True)
    model = YouTubeDNN(dim=16, hidden=[32], negatives=32, epochs=30, batch_size=16, lr=1e-2)
    model.set_params(validation_rows=0).fit(train)
    queries = query_playlists([[], [], []], ["calm evening", "Loud GYM", ""])
    queries.playlists["tags"] = [[], [], ["loud"]]
    rows = playlist_interactions(queries, with_tags=True, with_titles=True, items=model.items_)
    vectors = model.query_vectors(rows.matrix, queries)
    assert np.abs(vectors[:, :-1]).sum(axis=1).min() > 0  # no seed songs, still a vector
    found = next(iter(continue_playlists(model, queries, 10)))
    parity = [[int(t[1:]) % 2 for t in tracks] for tracks in found.tracks]
    assert np.mean(parity[0]) <= 0.2 and np.mean(parity[1]) >= 0.8 and np.mean(parity[2]) >= 0.8
    assert found.track_scores[0][0] != model.fallback_scores_.max()  # not the cold-start list


def test_same_seed_same_model_and_saved_as_safetensors(tmp_path) -> None:
    train, _ = planted_holdout(n_users=60, n_items=40)
    a, b = tiny(seed=3).fit(train), tiny(seed=3).fit(train)
    c = tiny(seed=4).fit(train)
    for name, value in a.weights_.items():
        np.testing.assert_array_equal(value, b.weights_[name])
    assert any(not np.array_equal(v, c.weights_[n]) for n, v in a.weights_.items())
    save_model(a, tmp_path / "m")
    assert (tmp_path / "m" / "weights_.safetensors").is_file()
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.item_vectors(), a.item_vectors())
    from safetensors.numpy import load_file, save_file

    from segue.exceptions import ModelFormatError

    weights = load_file(str(tmp_path / "m" / "weights_.safetensors"))
    weights["inputs.weight"] = weights["inputs.weight"][:-1].copy()  # one song short
    save_file(weights, str(tmp_path / "m" / "weights_.safetensors"))
    with pytest.raises(ModelFormatError):
        load_model(tmp_path / "m")


@pytest.mark.parametrize(
    "params",
    [
        {"dim": 0},
        {"hidden": [0]},
        {"hidden": "64"},
        {"negatives": -1},
        {"sample_power": -1.0},
        {"lr": float("nan")},
        {"dropout": -0.1},
        {"epochs": 0},
        {"device": "gpu"},
    ],
)
def test_bad_parameters_are_refused(params) -> None:
    with pytest.raises(ParameterError):
        YouTubeDNN(**params).validate_params()
