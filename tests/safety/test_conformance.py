"""Every registered safety family, on a real LP and a real (briefly) fine-tuned MiniLM: runs,
is deterministic, its result round-trips through JSON, its scores carry their metadata, its
figure draws; and the context computes each split's features once."""

import json

import pytest

from safeadapt.protocols import FitContext, make_protocol
from safeadapt.results.safety import SafetyResult
from safeadapt.safety import FAMILIES, EvalContext, Score, family, resolve_families

# small budgets for the families that attack, corrupt or probe other tasks (the defaults are
# exercised by the study tests)
CHEAP = {
    "adversarial": {"eps": (0.0, 0.05), "steps": 2, "max_examples": 8},
    "corruption": {"kinds": ("typo", "word_drop"), "severities": (1, 3), "max_examples": 16},
    "forgetting": {"reference_tasks": ("vader-domain",), "max_train": 60, "max_eval": 40},
    "effective_robustness": {"c_grid": (0.01, 1.0)},
}


@pytest.fixture(scope="module")
def fitted(text_task, minilm_factory, feature_cache):
    task = text_task.with_ood_val(0.5, seed=0)
    ctx = FitContext(task, minilm_factory, 0, feature_cache, show_progress=False)
    lp = make_protocol("lp").fit(ctx)
    ft = make_protocol("ft", {"epochs": 1, "max_steps": 3, "batch_size": 16}).fit(ctx)
    return task, {"lp": lp, "ft": ft}


def _context(task, result, minilm_factory, feature_cache):
    return EvalContext(
        result.model,
        task,
        pretrained=minilm_factory,
        cache=feature_cache,
        frozen_backbone=result.frozen_backbone,
    )


@pytest.mark.parametrize("name", FAMILIES.names())
@pytest.mark.parametrize("which", ["lp", "ft"])
def test_family_conformance(name, which, fitted, minilm_factory, feature_cache):
    task, results = fitted
    fam = family(name)
    cfg = resolve_families(CHEAP)[name]
    ctx = _context(task, results[which], minilm_factory, feature_cache)
    measured = fam.measure(ctx, cfg)
    again = fam.measure(_context(task, results[which], minilm_factory, feature_cache), cfg)
    # a typed result declared by the family, stored as plain JSON that reads back equal
    assert type(fam).Result is not SafetyResult and type(measured) is type(fam).Result
    stored = measured.to_json()
    assert json.loads(json.dumps(stored)) == stored
    first = fam.read(json.loads(json.dumps(stored)))
    assert first.to_json() == stored and type(first) is type(measured)
    assert json.dumps(stored, sort_keys=True) == json.dumps(again.to_json(), sort_keys=True)
    scores = fam.scores(first)
    declared = set(type(fam).SCORES)  # the table's columns; extra keys refine one of them
    assert declared <= set(scores)
    assert all(k.split(":", 1)[0] in declared for k in scores), scores
    for key, score in scores.items():
        assert isinstance(score, Score) and score.label and score.fmt
        assert score.value is None or isinstance(score.value, float), key
    png = fam.figure({which: [first, fam.read(again.to_json())]})
    assert png is None or png[:8] == b"\x89PNG\r\n\x1a\n"
    assert fam.title and FAMILIES.get(name).Config is type(cfg)
    assert all(v == 1 for v in ctx.passes.values()), ctx.passes  # each split computed once


def test_lp_has_no_flips_and_ft_is_measured(fitted, minilm_factory, feature_cache):
    task, results = fitted
    cfg = resolve_families({})["flips"]
    lp = family("flips").measure(_context(task, results["lp"], minilm_factory, feature_cache), cfg)
    assert all(row.nfr == 0 and row.pfr == 0 for row in lp.splits.values())
    ft = family("flips").measure(_context(task, results["ft"], minilm_factory, feature_cache), cfg)
    assert set(ft.splits) == {"test", *(f"ood:{k}" for k in task.ood)}


def test_family_settings_are_validated_and_can_be_turned_off():
    from safeadapt.errors import InvalidConfig

    assert resolve_families({"conformal": False})["conformal"] is None
    assert resolve_families({"conformal": {"coverage": 0.8}})["conformal"].coverage == 0.8
    with pytest.raises(InvalidConfig, match="Did you mean 'conformal'"):
        resolve_families({"conformall": {}})
    with pytest.raises(InvalidConfig, match="'coverage' must be in"):
        resolve_families({"conformal": {"coverage": 1.5}})
    with pytest.raises(InvalidConfig, match="unknown setting 'knn'"):
        resolve_families({"detection": {"knn": 3}})


def test_distortion_adds_per_example_shifts_and_columns_are_checked(
    fitted, minilm_factory, feature_cache
):
    task, results = fitted
    ctx = _context(task, results["ft"], minilm_factory, feature_cache)
    out = family("distortion").measure(ctx, resolve_families({})["distortion"])
    shift = ctx.columns["feature_shift"]
    assert set(shift) == set(task.eval_splits())
    assert shift["test"].mean() == pytest.approx(out.splits["test"].l2, rel=1e-6)
    with pytest.raises(ValueError, match="split 'test' has"):
        ctx.add_column("x", "test", shift["test"][:-1])
