import pytest
import torch

from safeadapt.data.features import FeatureCache, extract_features


def test_second_request_is_a_cache_hit(tmp_path, minilm, text_task):
    cache = FeatureCache(tmp_path)
    split = text_task.val
    first = cache.get(minilm, split, show_progress=False)
    assert (cache.hits, cache.misses) == (0, 1)
    second = cache.get(minilm, split, show_progress=False)
    assert (cache.hits, cache.misses) == (1, 1)
    torch.testing.assert_close(first.features, second.features)
    assert first.features.shape == (len(split), 384)
    # A new cache object over the same folder (a new process) hits the file too.
    again = FeatureCache(tmp_path)
    again.get(minilm, split, show_progress=False)
    assert (again.hits, again.misses) == (1, 0)


def test_cached_features_equal_fresh_ones(tmp_path, effnet, image_task):
    cache = FeatureCache(tmp_path)
    split = image_task.val.sample(20, seed=0)
    cached = cache.get(effnet, split, layers=("block.3",), show_progress=False)
    fresh = extract_features(effnet, split, layers=("block.3",), show_progress=False)
    torch.testing.assert_close(cached.features, fresh.features)
    torch.testing.assert_close(cached.layers["block.3"], fresh.layers["block.3"])


def test_changed_weights_change_the_key(tmp_path, minilm_factory, text_task):
    cache = FeatureCache(tmp_path)
    bb = minilm_factory()
    key = cache.key(bb, text_task.val)
    assert cache.key(bb, text_task.test) != key
    with torch.no_grad():
        bb.model.embeddings.word_embeddings.weight[0, 0] += 1.0
    assert cache.key(bb, text_task.val) != key


def test_corrupt_cache_file_is_recomputed(tmp_path, minilm, text_task):
    cache = FeatureCache(tmp_path)
    split = text_task.val.sample(16, seed=0)
    good = cache.get(minilm, split, show_progress=False).features
    path = cache.path(cache.key(minilm, split))
    path.write_bytes(b"garbage")
    again = cache.get(minilm, split, show_progress=False).features
    assert cache.misses == 2
    torch.testing.assert_close(good, again)


def test_a_damaged_cache_payload_of_the_same_size_is_recomputed(
    tmp_path, minilm, text_task, caplog
):
    cache = FeatureCache(tmp_path)
    split = text_task.val.sample(16, seed=0)
    good = cache.get(minilm, split, show_progress=False).features
    path = cache.path(cache.key(minilm, split))
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    data[half:] = bytes(len(data) - half)  # zero the second half: same size, parses fine
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        again = cache.get(minilm, split, show_progress=False).features
    assert cache.misses == 2 and "damaged" in caplog.text
    torch.testing.assert_close(good, again)
    assert not list(tmp_path.glob(".*.tmp"))


def test_texts_are_batched_by_length_and_returned_in_input_order(minilm, text_task):
    """Length-sorted batches pad less; the features come back in the split's order and equal
    unpadded one-at-a-time features."""
    from safeadapt.data.features import in_batches, length_order

    split = text_task.test.subset(list(range(48)), "some")
    order = length_order(split.inputs)
    lengths = [len(split.inputs[i]) for i in order]
    assert lengths == sorted(lengths) and sorted(order) == list(range(48))
    sorted_batches = list(in_batches(split.inputs, 8))
    plain = [split.inputs[s : s + 8] for s in range(0, 48, 8)]

    def padded(batches) -> int:
        return sum(len(b) * max(len(minilm.tokenizer(t)["input_ids"]) for t in b) for b in batches)

    assert padded([raw for _, raw in sorted_batches]) < padded(plain)
    batched = extract_features(minilm, split, batch_size=8, show_progress=False).features
    single = extract_features(minilm, split, batch_size=1, show_progress=False).features
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)
    assert length_order(split.inputs[:0]) is None and length_order(["a"]) == [0]


def test_bf16_features_have_their_own_cache_entries(tmp_path, minilm, text_task):
    """Opt-in bf16 extraction: close to fp32 (cosine >= 0.999), float32 on return, and its
    entries never mix with fp32 ones in either direction; fp32 keys are unchanged by it."""
    from safeadapt.backbones import load_backbone
    from safeadapt.errors import InvalidConfig

    cache = FeatureCache(tmp_path)
    split = text_task.val
    fp32_key = cache.key(minilm, split)
    bf16 = load_backbone("minilm", max_length=32, precision="bf16")
    assert cache.key(bf16, split) != fp32_key
    assert cache.key(load_backbone("minilm", max_length=32), split) == fp32_key
    full = cache.get(minilm, split, show_progress=False).features
    half = cache.get(bf16, split, show_progress=False).features
    assert (cache.hits, cache.misses) == (0, 2)  # the bf16 request did not hit the fp32 entry
    assert half.dtype == torch.float32 and not torch.equal(half, full)
    assert torch.nn.functional.cosine_similarity(half, full, dim=1).min() > 0.999
    assert torch.equal(cache.get(bf16, split, show_progress=False).features, half)
    assert torch.equal(cache.get(minilm, split, show_progress=False).features, full)
    with pytest.raises(InvalidConfig, match="'precision' must be one of"):
        load_backbone("minilm", precision="fp16")
