"""The regret benchmark (``bench/bench_regret.py --quick``: 2 pairs, 1 seed, a tiny budget) runs
end to end, its numbers agree with the studies it ran, and a rerun reuses every run."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_regret.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_regret", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_regret_run(tmp_path, capsys):
    from safeadapt.results import StudySummary

    bench = _bench()
    report = bench.main(["--quick", "--out", str(tmp_path)])
    assert set(report["pairs"]) == set(bench.QUICK_PAIRS)
    for name, pair in report["pairs"].items():
        summary = StudySummary.from_json(
            json.loads((tmp_path / name / "study" / "summary.json").read_text())
        )
        acc = pair["ood_accuracy"]
        # the hindsight best is the variant with the best OOD-test accuracy of the study
        assert acc[pair["best"]] == max(acc.values())
        assert summary.variants and {v.variant for v in summary.variants} == set(acc)
        for variant in summary.variants:  # the same number as the study's own summary
            assert acc[variant.variant] == pytest.approx(variant.mean("ood_accuracy"), abs=1e-9)
        rules = pair["rules"]
        assert rules["ood-val"]["pick"] == summary.recommendation.rules["ood-val"].variant
        assert rules["id-val"]["pick"] == summary.recommendation.rules["id-val"].variant
        for protocol in bench.FIXED:
            assert rules[f"always-{protocol}"]["pick"] == protocol
        for rule in rules.values():
            assert rule["regret"] == pytest.approx(acc[pair["best"]] - acc[rule["pick"]])
            assert rule["ci"][0] <= rule["regret"] <= rule["ci"][1]
            if rule["pick"] == pair["best"]:
                assert rule["regret"] == 0 and rule["indistinguishable"]
    for per_rule in report["averages"].values():
        for a in per_rule.values():
            assert a["ci"][0] <= a["regret"] <= a["ci"][1]
    assert (tmp_path / "regret.png").stat().st_size > 1000
    assert json.loads((tmp_path / "regret.json").read_text())["seeds"] == [0]
    out = capsys.readouterr().out
    assert "| rule | half |" in out and "vader-movies" in out

    again = bench.run([p for p in bench.PAIRS if p.name in bench.QUICK_PAIRS], bench.QUICK, [0],
                      tmp_path, log=lambda m: None)  # fmt: skip
    assert all(r["runs"]["ran"] == 0 for r in again.values())  # content-keyed: all reused
    for name, r in again.items():
        assert r["best"] == report["pairs"][name]["best"]

    # the follow-ups read the stored studies: the current rule reproduces the verdict's pick,
    # and the paired difference against a habit is the difference of the two regrets
    spec = importlib.util.spec_from_file_location("bench_regret_rules", BENCH.with_name(
        "bench_regret_rules.py"))  # fmt: skip
    rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rules)
    follow = rules.main(["--out", str(tmp_path)])
    current = follow["variants"]["current (1-point ID-val gate, ECE tie-break)"]["picks"]
    for name, pair in report["pairs"].items():
        assert current[name][0] == pair["rules"]["ood-val"]["pick"]
        assert current[name][1] == pytest.approx(pair["rules"]["ood-val"]["regret"])
    for habit in rules.HABITS:
        v = follow["versus"][f"{habit}/all"]
        assert v["ci"][0] <= v["difference"] <= v["ci"][1]
        for name, d in v["per_pair"].items():
            r = report["pairs"][name]["rules"]
            assert d == pytest.approx(r[f"always-{habit}"]["regret"] - r["ood-val"]["regret"])
