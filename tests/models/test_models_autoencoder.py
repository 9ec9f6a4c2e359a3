import numpy as np
import pytest
from contract import RecommenderContract
from planted import held_out_ndcg, planted_holdout

from segue import Autoencoder, MostPopular, ParameterError, load, save
from segue.data.kinds import ItemKind

torch = pytest.importorskip("torch")


def tiny(**params) -> Autoencoder:
    base = dict(layers=[16, 8], dropout=0.2, epochs=4, batch_size=16, validation_rows=0)
    return Autoencoder(**{**base, **params})


class TestPlaylistAutoencoder(RecommenderContract):
    def make_model(self) -> Autoencoder:
        return tiny()


class TestTiedRefeedAutoencoder(RecommenderContract):
    def make_model(self) -> Autoencoder:
        return tiny(tied=True, refeed=True, layers=[12])


class TestSongAutoencoder(RecommenderContract):
    def make_model(self) -> Autoencoder:
        return tiny(orientation="song", n_neighbors=10)


@pytest.fixture(scope="module")
def planted():
    return planted_holdout()


@pytest.mark.parametrize("orientation", ["playlist", "song"])
def test_learns_the_planted_groups(planted, orientation) -> None:
    train, truth = planted
    model = Autoencoder(
        orientation=orientation,
        layers=[32, 16],
        dropout=0.5,
        epochs=10,
        batch_size=32,
        lr=3e-3,
        n_neighbors=20,
        validation_rows=60,
        patience=3,
    ).fit(train)
    pop = held_out_ndcg(MostPopular().fit(train), train, truth)
    got = held_out_ndcg(model, train, truth)
    assert got > 2 * pop + 0.05, (orientation, got, pop)
    assert model.epochs_trained_ >= 1 and model.seconds_per_epoch_ > 0


def test_same_seed_same_model_other_seed_other_model(planted) -> None:
    train, _ = planted
    a = tiny(seed=3).fit(train)
    b = tiny(seed=3).fit(train)
    c = tiny(seed=4).fit(train)
    for name, value in a.weights_.items():
        np.testing.assert_array_equal(value, b.weights_[name])
    assert any(not np.array_equal(v, c.weights_[n]) for n, v in a.weights_.items())


def test_fit_leaves_the_callers_random_stream_alone(planted) -> None:
    train, _ = planted
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny().fit(train)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_saved_as_safetensors_and_reloaded(tmp_path, planted) -> None:
    train, _ = planted
    model = tiny().fit(train)
    save(model, tmp_path / "ae")
    assert (tmp_path / "ae" / "weights_.safetensors").is_file()
    assert not list((tmp_path / "ae").glob("*.pkl")) and not list((tmp_path / "ae").glob("*.pt"))
    again = load(tmp_path / "ae")
    users = train.users.ids[:20]
    np.testing.assert_array_equal(
        model.recommend(users, 10).items, again.recommend(users, 10).items
    )


def test_mismatched_weights_are_refused_at_load(tmp_path, planted) -> None:
    from safetensors.numpy import load_file, save_file

    from segue.exceptions import ModelFormatError

    train, _ = planted
    save(tiny().fit(train), tmp_path / "ae")
    path = tmp_path / "ae" / "weights_.safetensors"
    weights = load_file(str(path))
    weights["encoder.0.weight"] = weights["encoder.0.weight"][:, :-1].copy()
    save_file(weights, str(path))
    with pytest.raises(ModelFormatError):
        load(tmp_path / "ae")


@pytest.mark.parametrize(
    "params",
    [
        {"orientation": "user"},
        {"layers": []},
        {"layers": [8, 0]},
        {"dropout": 1.0},
        {"masked_weight": 0, "plain_weight": 0},
        {"lr": 0},
        {"epochs": 0},
        {"device": "tpu"},
    ],
)
def test_bad_parameters_are_refused(params) -> None:
    with pytest.raises(ParameterError):
        Autoencoder(**params).validate_params()


def test_song_orientation_takes_tags_from_the_nearest_playlists(tmp_path) -> None:
    from segue.data.readers.melon import read_melon
    from segue.data.synthetic.melon import generate_melon
    from segue.inference.encode import playlist_interactions

    generate_melon(tmp_path, n_playlists=300, n_songs=400, n_tags=40, seed=0)
    inter = playlist_interactions(read_melon(tmp_path / "train.json"), with_tags=True)
    model = tiny(orientation="song", n_neighbors=10).fit(inter)
    tags = model.items_.columns(ItemKind.TAG)
    assert len(tags)
    rows = inter.matrix[:5]
    scores = model.score(np.full(5, -1, dtype=np.int32), rows)
    assert np.isfinite(scores[:, tags]).all() and (scores[:, tags] > 0).any()


def test_cli_trains_both_orientations_and_prints_epochs(tmp_path) -> None:
    from typer.testing import CliRunner

    from segue.cli.main import app
    from segue.data.readers.listens import write_listens
    from segue.data.synthetic.listens import generate_listens

    write_listens(tmp_path / "listens.txt", generate_listens(120, 150, n_clusters=4, seed=1))
    for orientation in ("playlist", "song"):
        out = tmp_path / orientation
        res = CliRunner().invoke(
            app,
            [
                "train",
                "--listens",
                str(tmp_path / "listens.txt"),
                "--model",
                "autoencoder",
                "--param",
                f"orientation={orientation}",
                "--param",
                "layers=[16,8]",
                "--param",
                "epochs=2",
                "--param",
                "validation_rows=30",
                "--out",
                str(out),
            ],
        )
        assert res.exit_code == 0, res.output
        assert "epoch 1/2" in res.output and "valid ndcg@100" in res.output
        assert load(out).get_params()["orientation"] == orientation
