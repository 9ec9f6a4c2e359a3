"""The Spark engine against the single-machine path, on a local Spark started here.

One SparkSession (local[2], no UI, 2 shuffle partitions, 1 GB heap) for the whole module; the
tests skip, saying why, only when no Java runtime is installed.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from segue.data.interactions import Interactions
from segue.data.readers.listens import read_listen_interactions
from segue.exceptions import DataFormatError
from segue.models.knn import ItemKNN
from segue.models.wrmf import WRMF
from segue.serialization import load, save_model
from segue.spark.session import java_missing_reason

pytest.importorskip("pyspark", reason="the spark extra (pyspark) is not installed")
if java_missing_reason():
    pytest.skip(java_missing_reason(), allow_module_level=True)

# pyspark 4.0 warns that it "does not yet fully support pandas >= 3" on every Arrow transfer
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

from segue.spark import metrics as sm  # noqa: E402
from segue.spark.collect import to_interactions  # noqa: E402
from segue.spark.idmap import encode  # noqa: E402
from segue.spark.knn import cooccurrence, fit_itemknn  # noqa: E402
from segue.spark.readers import read_listens_df, read_mpd_df  # noqa: E402
from segue.spark.scoring import continue_playlists_df, recommend_users_df  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    from segue.spark.session import spark_session

    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
    # maxResultSize at its floor: every step must stream what it brings back (see collect.py)
    session = spark_session(
        "local[2]",
        driver_memory="1g",
        shuffle_partitions=2,
        conf={"spark.driver.maxResultSize": "1m"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def listens(tmp_path_factory) -> Path:
    """Planted tastes: even users play even songs, odd users odd songs (counts 1..20)."""
    rng = np.random.default_rng(0)
    lines = []
    for u in range(30):
        for i in rng.choice(np.arange(u % 2, 24, 2), size=7, replace=False):
            lines.append(f"u{u:02d} s{i:02d} {int(rng.integers(1, 20))}")
    lines += ["u00 s01 1", "u03 s00 2"]  # a few cross-taste plays
    path = tmp_path_factory.mktemp("spark") / "listens.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def encoded(spark, listens):
    users, items, coded = encode(read_listens_df(spark, listens))
    coded = coded.cache()
    return users, items, coded, to_interactions(users, items, coded)


def _aligned_single(listens: Path, train: Interactions) -> Interactions:
    """The single-machine reading, renumbered to the Spark vocabularies."""
    single = read_listen_interactions(listens)
    return Interactions.from_arrays(
        *single.to_frame()[["user_id", "item_id"]].T.to_numpy(),
        single.matrix.data,
        user_ids=train.users,
        item_ids=train.items,
    )


def test_id_maps_are_sorted_and_the_matrix_is_the_single_machine_one(encoded, listens):
    users, items, _, train = encoded
    assert list(users.ids) == sorted(users.ids)
    assert list(items.ids) == sorted(items.ids)
    single = _aligned_single(listens, train)
    assert (train.matrix != single.matrix).nnz == 0


def test_cooccurrence_is_the_binary_product(encoded):
    _, _, coded, train = encoded
    pairs = cooccurrence(coded).toPandas()
    got = sp.csr_array(
        (pairs["n"].to_numpy(np.float64), (pairs["i"], pairs["j"])), shape=(train.n_items,) * 2
    )
    binary = sp.csr_array(train.matrix, copy=True)
    binary.data[:] = 1
    assert abs(got - binary.T @ binary).max() == 0


@pytest.mark.parametrize(
    "params", [{}, {"similarity": "bm25", "binarize": False, "neighbors": 5}], ids=["cos", "bm25"]
)
def test_itemknn_neighbours_equal_the_single_machine_ones(encoded, listens, params):
    _, _, coded, train = encoded
    cached = {rdd.id() for rdd in coded.sparkSession.sparkContext._jsc.getPersistentRDDs().values()}
    spark_model = fit_itemknn(coded, train, ItemKNN(**params))
    left = {rdd.id() for rdd in coded.sparkSession.sparkContext._jsc.getPersistentRDDs().values()}
    assert left <= cached  # its weighted entries and pair products are released
    single = ItemKNN(**params).fit(_aligned_single(listens, train))
    a, b = spark_model.similarity_, single.similarity_
    assert a.nnz == b.nnz > 0
    assert (a.indices == b.indices).all() and (a.indptr == b.indptr).all()
    if not params:  # binary cosine: integer products, bit for bit
        assert (a.data == b.data).all()
    else:
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5)


def test_spark_als_learns_the_planted_tastes_and_serves_as_a_wrmf(encoded, tmp_path):
    from segue.spark.als import fit_wrmf

    _, _, coded, train = encoded
    model = fit_wrmf(coded, train, WRMF(factors=4, iterations=5, regularization=1.0))
    save_model(model, tmp_path / "wrmf")
    loaded = load(tmp_path / "wrmf")
    assert isinstance(loaded, WRMF) and loaded.user_factors_.shape == (30, 4)
    recs = loaded.recommend(list(train.users.ids), 3)
    parity = [int(u[1:]) % 2 == int(i[1:]) % 2 for u, row in recs.lists() for i in row]
    assert np.mean(parity) > 0.9  # popularity alone would give about 0.5


def test_scoring_on_spark_equals_model_recommend(spark, encoded, tmp_path):
    _, _, coded, train = encoded
    model = ItemKNN(neighbors=5).fit(train)
    save_model(model, tmp_path / "knn")
    ids = list(train.users.ids) + ["nobody"]
    targets = spark.createDataFrame(list(enumerate(ids)), "order long, user string")
    got = recommend_users_df(spark, tmp_path / "knn", targets, 4).orderBy("order").toPandas()
    want = dict(model.recommend(ids, 4, unknown="fallback").lists())
    assert [list(x) for x in got["items"]] == [list(want[u]) for u in ids]
    # the workers' copy of the model is in the application's files folder, which Spark deletes
    # at its end, not in the system temp folder (where copies used to pile up, one per run)
    from pyspark import SparkFiles

    from segue.spark.scoring import broadcast_model

    digest = broadcast_model(spark, tmp_path / "knn")[1][:32]
    assert (Path(SparkFiles.getRootDirectory()) / f"segue-model-{digest}").is_dir()
    assert not (Path(tempfile.gettempdir()) / f"segue-spark-model-{digest}").exists()


def test_playlist_reader_continuation_and_mpd_metrics(spark, tmp_path):
    from segue.data.readers.mpd import read_challenge_set
    from segue.inference.continuation import continue_playlists
    from segue.metrics.challenges import mpd_metrics

    rng = np.random.default_rng(1)
    playlists = []
    for pid in range(20):
        tracks = rng.choice(np.arange(pid % 2, 16, 2), size=5, replace=False)
        playlists.append(
            {
                "pid": pid,
                "name": f"p{pid}",
                "tracks": [{"track_uri": f"t{t:02d}", "pos": k} for k, t in enumerate(tracks)],
            }
        )
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "mpd.slice.0-19.json").write_text(json.dumps({"playlists": playlists}))
    challenge = tmp_path / "challenge_set.json"
    questions = [
        {"pid": 100, "name": "odd", "tracks": [{"track_uri": "t01", "pos": 0}]},
        {"pid": 101, "name": "x", "tracks": []},
    ]
    challenge.write_text(json.dumps({"playlists": questions}))
    users, items, coded = encode(read_mpd_df(spark, tmp_path / "train"), user_kind="playlist")
    train = to_interactions(users, items, coded)
    assert train.nnz == 100 and set(train.matrix.data) == {1.0}
    model = ItemKNN(neighbors=4).fit(train)
    save_model(model, tmp_path / "m")
    got = continue_playlists_df(spark, tmp_path / "m", challenge, 3).orderBy("order").toPandas()
    want = next(continue_playlists(model, read_challenge_set(challenge), 3))
    assert [list(t) for t in got["tracks"]] == want.tracks
    answers = spark.createDataFrame(
        [(100, ["t03", "t05"]), (101, ["t00"])], "pid long, truth array<string>"
    )
    per = sm.mpd_metrics_df(spark.createDataFrame(got[["pid", "tracks"]]), answers, k=3)
    single = mpd_metrics(want.tracks, [["t03", "t05"], ["t00"]], k=3)
    np.testing.assert_allclose(
        per.orderBy("pid").toPandas()[list(sm.MPD_METRICS)].to_numpy(), single.to_numpy()
    )


def test_title_words_are_columns_as_on_one_machine(spark, tmp_path):
    from segue.data.kinds import ItemKind
    from segue.data.readers.mpd import read_challenge_set, read_mpd
    from segue.inference.continuation import continue_playlists
    from segue.inference.encode import playlist_interactions

    rng = np.random.default_rng(2)
    names = ["Chill Vibes 🌴", "ROCK on!!", "chill   vibes", "rock"]
    playlists = [
        {
            "pid": pid,
            "name": names[pid % 4],
            "tracks": [
                {"track_uri": f"t{t:02d}", "pos": k}
                for k, t in enumerate(rng.choice(np.arange(pid % 2, 16, 2), 5, replace=False))
            ],
        }
        for pid in range(24)
    ]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "mpd.slice.0-23.json").write_text(json.dumps({"playlists": playlists}))
    frame = read_mpd_df(spark, tmp_path / "train", with_titles=True)
    users, items, coded = encode(frame, user_kind="playlist")
    train = to_interactions(users, items, coded)
    single = playlist_interactions(read_mpd(tmp_path / "train"), with_titles=True)
    # the same columns with the same kinds, tracks first; the same (playlist, column) entries
    kinds = dict(zip(items.ids, items.kinds, strict=True))
    assert kinds == dict(zip(single.items.ids, single.items.kinds, strict=True))
    assert kinds["title:chill"] == ItemKind.TITLE_WORD and kinds["title=rock on"] == ItemKind.TITLE
    assert (np.diff(items.kinds.astype(int)) >= 0).all() and items.kinds[0] == ItemKind.TRACK

    def pairs(inter):
        m = inter.matrix.tocoo()
        return set(zip(inter.users.ids[m.row], inter.items.ids[m.col], m.data, strict=True))

    assert pairs(train) == pairs(single) and len(pairs(train)) == 24 * 5 + 18 * 3 + 6 * 2
    # a title-only question is answered from the title columns, on Spark as on one machine
    model = ItemKNN(neighbors=8).fit(train)
    save_model(model, tmp_path / "m")
    challenge = tmp_path / "challenge_set.json"
    questions = [{"pid": 900, "name": "chill!", "tracks": []}]
    challenge.write_text(json.dumps({"playlists": questions}))
    got = continue_playlists_df(spark, tmp_path / "m", challenge, 4).toPandas()
    want = next(continue_playlists(model, read_challenge_set(challenge), 4))
    assert [list(t) for t in got["tracks"]] == want.tracks
    assert all(int(t[1:]) % 2 == 0 for t in want.tracks[0])  # chill playlists hold even tracks


def test_results_larger_than_max_result_size_come_back_streamed(spark):
    from segue.spark.collect import collect_columns

    n = 400_000  # 4.8 MB of (int, int, float): over the 1 MiB limit of this session
    frame = spark.range(n).selectExpr(
        "cast(id as int) as i", "cast(id % 977 as int) as j", "cast(id / 7 as float) as s"
    )
    frame = frame.repartition(16, "i")  # 300 KB a partition
    with pytest.raises(Exception, match="maxResultSize"):
        frame.toArrow()  # one job for everything: refused
    got = collect_columns(frame, {"i": np.int32, "j": np.int32, "s": np.float32})
    order = np.argsort(got["i"])
    np.testing.assert_array_equal(got["i"][order], np.arange(n, dtype=np.int32))
    np.testing.assert_array_equal(got["j"][order], np.arange(n) % 977)
    np.testing.assert_array_equal(got["s"][order], (np.arange(n) / 7).astype(np.float32))


def test_large_results_come_back_through_parquet_and_leave_no_files(spark, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from segue.exceptions import ParameterError
    from segue.spark.collect import columns_via_parquet

    monkeypatch.setenv("SEGUE_SPARK_SCRATCH", str(tmp_path))
    n = 50_000
    frame = spark.range(n).selectExpr("cast(id as int) as i", "cast(id / 3 as float) as s")
    got = columns_via_parquet(frame.repartition(5), {"i": np.int32, "s": np.float32})
    order = np.argsort(got["i"])
    np.testing.assert_array_equal(got["i"][order], np.arange(n, dtype=np.int32))
    np.testing.assert_array_equal(got["s"][order], (np.arange(n) / 3).astype(np.float32))
    assert got["i"].dtype == np.int32 and list(tmp_path.iterdir()) == []  # removed
    # on a cluster, the driver's temp dir is not the executors': a shared folder is required
    monkeypatch.delenv("SEGUE_SPARK_SCRATCH")
    remote = SimpleNamespace(
        sparkSession=SimpleNamespace(sparkContext=SimpleNamespace(master="yarn"))
    )
    with pytest.raises(ParameterError, match="SEGUE_SPARK_SCRATCH"):
        columns_via_parquet(remote, {"i": np.int32})


def test_listen_metrics_equal_evaluate_lists(spark):
    from segue.metrics.evaluate import evaluate_lists

    recs = {"a": ["x", "y", "z"], "b": ["y", "q"]}
    answers = Interactions.from_arrays(["a", "a", "b", "c"], ["y", "w", "q", "x"])
    single = evaluate_lists(recs, answers, [2, 3]).summary
    recs_df = spark.createDataFrame(list(recs.items()), "user string, items array<string>")
    truth = spark.createDataFrame(
        [("a", "y"), ("a", "w"), ("b", "q"), ("c", "x")], "user string, item string"
    )
    names = sm._metric_names([2, 3])
    got = sm.summary(sm.listen_metrics_df(recs_df, truth, [2, 3]), names)
    for name in names:
        assert got[name] == pytest.approx(single[name], abs=1e-12)


def test_a_bad_listens_line_is_one_error_naming_the_line(spark, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("u1 s1 3\nu2 s2 lots\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:2: count 'lots' is not a number"):
        read_listens_df(spark, bad)


def test_cli_train_recommend_evaluate_with_engine_spark(listens, tmp_path):
    from segue.cli.main import app

    runner = CliRunner()
    model_dir = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--listens",
            str(listens),
            "--model",
            "itemknn",
            "--param",
            "neighbors=5",
            "--out",
            str(model_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    targets = tmp_path / "users.txt"
    targets.write_text("u00\nu01\n")
    recs = tmp_path / "recs.txt"
    result = runner.invoke(
        app,
        [
            "recommend",
            str(model_dir),
            "--engine",
            "spark",
            "--users",
            str(targets),
            "--n",
            "3",
            "--out",
            str(recs),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = recs.read_text().splitlines()
    want = load(model_dir).recommend(["u00", "u01"], 3)
    assert lines == [" ".join([u, *items]) for u, items in want.lists()]
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(recs),
            "--engine",
            "spark",
            "--answers",
            str(listens),
            "--k",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ndcg@3" in result.output
    result = runner.invoke(
        app,
        [
            "train",
            "--engine",
            "spark",
            "--listens",
            str(listens),
            "--model",
            "ease",
            "--out",
            str(tmp_path / "e"),
        ],
    )
    assert result.exit_code != 0 and "wrmf or itemknn" in result.output


def test_default_reg_param_is_smaller_on_membership_data(monkeypatch):
    """Spark's regParam: the lambda mapping on counts, 1/64 of it on membership (playlists)."""
    from segue.spark import als

    seen = []

    def factors(coded, n_users, n_items, model, *, reg_param, block_count=None):
        seen.append(reg_param)
        k = model.factors
        return np.zeros((n_users, k), np.float32), np.zeros((n_items, k), np.float32)

    monkeypatch.setattr(als, "als_factors", factors)
    users, items = ["a", "a", "b"], ["x", "y", "x"]
    als.fit_wrmf(None, Interactions.from_arrays(users, items, [1, 5, 2]), WRMF(factors=2))
    als.fit_wrmf(None, Interactions.from_arrays(users, items, [1, 1, 1]), WRMF(factors=2))
    mapped = WRMF().regularization * (2 + 2) / (2 * 3)
    assert seen == pytest.approx([mapped, mapped * als.MEMBERSHIP_REG_MULTIPLE])
    assert seen[1] < seen[0]


def _raised_by(module: str, name: str, text: str) -> str:
    from segue.spark.session import SparkFailure, spark_errors

    error = type(name, (Exception,), {"__module__": module})
    with pytest.raises(SparkFailure) as caught, spark_errors("training"):
        raise error(text)
    return str(caught.value)


def test_spark_errors_name_the_java_cause_and_only_say_killed_when_the_jvm_is_gone():
    java = (
        "An error occurred while calling o123.collectToPython.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Total size of "
        "serialized results of 4 tasks (1085.5 MiB) is bigger than spark.driver.maxResultSize "
        "(1024.0 MiB)\n\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages"
    )
    said = _raised_by("py4j.protocol", "Py4JJavaError", java)
    assert said.startswith("training failed on Spark: Job aborted due to stage failure: Total")
    assert "SEGUE_SPARK_DRIVER_MEMORY" in said and "stopped answering" not in said
    gone = _raised_by("py4j.protocol", "Py4JNetworkError", "Answer from Java side is empty")
    assert "stopped answering" in gone
