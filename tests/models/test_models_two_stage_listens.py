"""The two-stage model on listen counts (segue.ranking.listens): contract, learning, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contract import RecommenderContract
from typer.testing import CliRunner

from segue import Interactions, MostPopular, ParameterError, load_model, save_model
from segue.cli.main import app
from segue.data.readers.listens import write_listens
from segue.data.split import split_listens
from segue.data.synthetic.listens import generate_listens
from segue.metrics.evaluate import evaluate_lists
from segue.models import ItemKNN
from segue.ranking.two_stage import TwoStage

pytestmark = pytest.mark.slow


def listens(seed: int = 0, n_users: int = 150, n_items: int = 120):
    return generate_listens(n_users, n_items, n_clusters=4, mean_items_per_user=20, seed=seed)


def tiny(**params) -> TwoStage:
    base = dict(
        first_stage={"pop": {"model": "popularity"}, "iknn": {"model": "itemknn"}},
        n=40,
        folds=1,
        num_boost_round=20,
        early_stopping_rounds=5,
        num_threads=1,
    )
    return TwoStage(**{**base, **params})


class TestListenTwoStage(RecommenderContract):
    #: a user given again as new listens is answered from its row, not as the trained user
    #: (the kNN sources are exact, but a folded-in row's features are those of a new user)
    folds_in_exactly = False

    @pytest.fixture
    def data(self) -> Interactions:
        return Interactions.from_frame(listens(n_users=80, n_items=80), weight="count")

    def other_data(self) -> Interactions:
        return Interactions.from_frame(listens(seed=7, n_users=70, n_items=60), weight="count")

    def make_model(self) -> TwoStage:
        return tiny()

    def test_task_is_listens_and_features_name_the_sources(self, fitted: TwoStage) -> None:
        assert fitted.task_ == "listens"
        assert "iknn__score" in fitted.feature_names_ and "u_plays" in fitted.feature_names_


@pytest.fixture(scope="module")
def task():
    df = generate_listens(400, 300, n_clusters=8, mean_items_per_user=25, seed=3)
    split = split_listens(df, seed=0)
    train = Interactions.from_frame(split.listens, weight="count")
    answers = Interactions.from_frame(split.answers, weight="count")
    return train, split.targets, answers


def ndcg(model, task) -> float:
    train, targets, answers = task
    recs = model.recommend(targets, 100)
    return evaluate_lists(dict(recs.lists()), answers, (100,), train=train).summary["ndcg@100"]


def test_learns_more_than_its_sources(task) -> None:
    """The ranker over popularity and item-kNN beats popularity clearly and keeps up with
    the kNN alone (the data's taste clusters are strong, so popularity is not weak here): it
    learned which source to trust, from inner questions only."""
    train = task[0]
    model = tiny(n=100, folds=2, num_boost_round=60, early_stopping_rounds=10).fit(train)
    got = ndcg(model, task)
    pop = ndcg(MostPopular().fit(train), task)
    knn = ndcg(ItemKNN().fit(train), task)
    assert got > pop + 0.1, (got, pop, knn)
    assert got > 0.97 * knn, (got, pop, knn)
    assert 0 < model.inner_recall_ <= 1


def test_scorers_and_labels(task, tmp_path) -> None:
    """An extra model scoring only the candidates is a feature; binary labels also train."""
    train, targets, _ = task
    model = tiny(scorers={"ease": {"model": "ease", "params": {"l2": 50.0}}}, labels="binary")
    model.fit(train)
    assert "ease__score" in model.feature_names_ and set(model.scorers_) == {"ease"}
    assert ndcg(model, task) > ndcg(MostPopular().fit(train), task)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(
        loaded.recommend(targets, 20).items, model.recommend(targets, 20).items
    )
    with pytest.raises(ParameterError, match="scorer names"):
        tiny(scorers={"pop": {"model": "ease"}}).validate_params()
    with pytest.raises(ParameterError, match="labels"):
        tiny(labels="weights").validate_params()


def test_cli_trains_and_recommends_listen_counts(tmp_path: Path) -> None:
    runner = CliRunner()
    write_listens(tmp_path / "listen_count.txt", listens())
    config = tmp_path / "two-stage.toml"
    config.write_text(
        "n = 40\nfolds = 1\nnum_boost_round = 20\nnum_threads = 1\n"
        '[first_stage.pop]\nmodel = "popularity"\n[first_stage.iknn]\nmodel = "itemknn"\n'
    )
    res = runner.invoke(
        app,
        [
            "train",
            "--listens",
            str(tmp_path / "listen_count.txt"),
            "--model",
            "two-stage",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "model"),
        ],
    )
    assert res.exit_code == 0, res.output
    (tmp_path / "users.txt").write_text("u000001\nu000002\n")
    res = runner.invoke(
        app,
        [
            "recommend",
            str(tmp_path / "model"),
            "--users",
            str(tmp_path / "users.txt"),
            "--n",
            "10",
            "--out",
            str(tmp_path / "recs.txt"),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "recs.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["u000001", "u000002"]
    assert all(len(set(line.split()[1:])) == 10 for line in lines)
    assert np.all([len(line.split()) == 11 for line in lines])
