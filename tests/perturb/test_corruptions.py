"""Corruptions: seeded, graded, shape-preserving, inputs untouched."""

import numpy as np
import pytest

from safeadapt.errors import InvalidConfig
from safeadapt.perturb import IMAGE_CORRUPTIONS, TEXT_CORRUPTIONS, corrupt


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    x = np.zeros((6, 28, 28), dtype=np.uint8)
    x[:, 8:20, 10:18] = 200 + rng.integers(0, 50, size=(6, 12, 8))
    return x


COLOUR_ONLY = {"saturate"}


def test_every_image_corruption_keeps_shape_dtype_and_source(images):
    before = images.copy()
    for kind in IMAGE_CORRUPTIONS.names():
        for sev in (1, 5):
            out = corrupt(images, "image", kind, sev, seed=1)
            assert out.shape == images.shape and out.dtype == np.uint8
            if kind in COLOUR_ONLY:  # greyscale has no saturation: unchanged, left out
                np.testing.assert_array_equal(out, images)
            else:
                assert not np.array_equal(out, images), (kind, sev)
    np.testing.assert_array_equal(images, before)


def test_rgb_images_are_supported(images):
    rng = np.random.default_rng(1)
    tint = rng.uniform(0.3, 1.0, size=3)
    rgb = (np.repeat(images[..., None], 3, axis=-1) * tint).astype(np.uint8)
    for kind in IMAGE_CORRUPTIONS.names():
        out = corrupt(rgb, "image", kind, 3)
        assert out.shape == rgb.shape and not np.array_equal(out, rgb), kind


SEVERITY_GRADED = [k for k in IMAGE_CORRUPTIONS.names() if k not in COLOUR_ONLY | {"jpeg"}]


@pytest.mark.parametrize("kind", [*SEVERITY_GRADED, "jpeg"])
def test_image_damage_grows_with_severity(images, kind):
    """Mean absolute change from the clean image, severity 1 -> 5 (the same seed each time):
    the published parameters grow monotonically except JPEG's, which only ends higher."""
    err = [
        np.abs(corrupt(images, "image", kind, s).astype(float) - images).mean()
        for s in (1, 2, 3, 4, 5)
    ]
    assert err[4] > err[0], err
    if kind in ("gaussian_noise", "gaussian_blur", "contrast", "shot_noise", "impulse_noise"):
        assert all(b >= a - 1e-9 for a, b in zip(err, err[1:], strict=False)), err


def test_impulse_noise_hits_about_its_share_and_saturate_needs_colour(images):
    out = corrupt(images, "image", "impulse_noise", 5)  # 7 % of values on a 28 px image
    changed = (out != images) & ((out == 0) | (out == 255))
    assert 0.02 < changed.mean() < 0.08
    rgb = np.stack([images, images // 2, images // 3], axis=-1)
    grey = corrupt(rgb, "image", "saturate", 1).astype(float)  # saturation x 0.3
    spread = lambda x: (x.max(-1) - x.min(-1)).mean()  # noqa: E731
    assert spread(grey) < 0.5 * spread(rgb.astype(float))


def test_contrast_keeps_the_mean_and_shrinks_the_spread(images):
    out = corrupt(images, "image", "contrast", 5).astype(float)
    src = images.astype(float)
    assert abs(out.mean() - src.mean()) < 1.0
    assert out.std() < 0.3 * src.std()


def test_same_seed_same_corruption_other_seed_differs(images):
    a = corrupt(images, "image", "gaussian_noise", 3, seed=4)
    np.testing.assert_array_equal(a, corrupt(images, "image", "gaussian_noise", 3, seed=4))
    assert not np.array_equal(a, corrupt(images, "image", "gaussian_noise", 3, seed=5))


TEXTS = [
    "the film is a quiet and moving portrait of a family in crisis",
    "dull , overlong and badly acted from start to finish",
    "great",
]


def test_text_corruptions_touch_the_stated_fraction_of_words():
    for kind in TEXT_CORRUPTIONS.names():
        for sev in (1, 2, 3):
            out = corrupt(TEXTS, "text", kind, sev, seed=0)
            assert len(out) == len(TEXTS) and all(t.strip() for t in out)
            if kind != "synonym":  # only words of its table change (below)
                assert out[0] != TEXTS[0], (kind, sev)
    dropped = corrupt(TEXTS, "text", "word_drop", 3)
    n = len(TEXTS[0].split())
    assert len(dropped[0].split()) == n - int(np.ceil(0.2 * n))
    assert dropped[2] == "great"  # a one-word text is never emptied
    swapped = corrupt(TEXTS, "text", "word_swap", 2)
    assert sorted(swapped[0].split()) == sorted(TEXTS[0].split())


def test_typos_change_characters_not_word_count():
    out = corrupt(TEXTS, "text", "typo", 3, seed=2)
    assert [len(t.split()) for t in out] == [len(t.split()) for t in TEXTS]
    changed = sum(a != b for a, b in zip(out[0].split(), TEXTS[0].split(), strict=True))
    assert 1 <= changed <= int(np.ceil(0.2 * len(TEXTS[0].split())))


def test_keyboard_ocr_case_punctuation_and_synonyms_by_hand():
    from safeadapt.perturb.text import _neighbours

    text = "good movie very big fast car and many people"  # every word but 'and' has synonyms
    n = len(text.split())
    for kind in ("keyboard", "ocr", "case", "synonym"):
        out = corrupt([text], "text", kind, 3, seed=3)[0].split()
        changed = [(a, b) for a, b in zip(text.split(), out, strict=True) if a != b]
        assert 1 <= len(changed) <= int(np.ceil(0.2 * n)), (kind, changed)
        for a, b in changed:
            if kind == "keyboard":  # one letter, replaced by a neighbouring key
                (i,) = [j for j in range(len(a)) if a[j] != b[j]]
                assert b[i] in _neighbours(a[i])
            if kind == "case":
                assert a.lower() == b.lower()
    assert corrupt(["Hello, world!"], "text", "punctuation", 1, seed=0)[0] in {
        "Hello world!",
        "Hello, world",
    }
    assert corrupt(["colour"], "text", "synonym", 3)[0] == "colour"  # no entry: unchanged
    assert corrupt(["Film."], "text", "synonym", 3)[0] == "Movie."  # case and marks kept


def test_bad_kind_and_severity_are_named():
    with pytest.raises(InvalidConfig, match="Did you mean 'gaussian_noise'"):
        corrupt(np.zeros((1, 28, 28), np.uint8), "image", "gaussian_nois", 1)
    with pytest.raises(InvalidConfig, match=r"severity must be one of \(1, 2, 3\)"):
        corrupt(TEXTS, "text", "typo", 5)
