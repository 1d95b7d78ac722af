"""The data commands: shift, audit, curate, fetch-data and list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeadapt.cli.app import TrustCode, _fail, _guarded, _trust, app


def _task_and_backbone(task: str | None, study: Path | None, max_per_set: int | None = None):
    """A task and backbone factory from ``--task`` (built-in, default backbone) or ``--study``."""
    from safeadapt.errors import InvalidConfig
    from safeadapt.study.config import load_study
    from safeadapt.study.specs import BackboneSpec, TaskSpec

    if (task is None) == (study is None):
        raise InvalidConfig("give exactly one of --task <built-in name> or --study <study.yaml>.")
    if study is not None:
        config = load_study(study)
        spec, backbone = config.task, config.backbone
    else:
        spec, backbone = TaskSpec(builtin=task), BackboneSpec()
    loaded = spec.load()
    return loaded, backbone.factory(loaded.modality)


@app.command()
@_guarded
def shift(
    task: Annotated[str | None, typer.Option(help="A built-in task (safeadapt list).")] = None,
    study: Annotated[Path | None, typer.Option(help="Use a study's task and backbone.")] = None,
    sets: Annotated[
        str, typer.Option(help="Comma-separated splits; the first is compared with each other.")
    ] = "train,test,ood",
    max_per_set: Annotated[int, typer.Option(help="Seeded sample per set.")] = 500,
    permutations: Annotated[int, typer.Option(help="MMD permutations.")] = 500,
    level: Annotated[float, typer.Option(help="Test level.")] = 0.05,
    out: Annotated[Path, typer.Option(help="Folder for shift.json and shift.png.")] = Path(
        "safeadapt-out/shift"
    ),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    fail_on_shift: Annotated[
        bool, typer.Option("--fail-on-shift", help="Exit 1 when a shift is detected (for CI).")
    ] = False,
    trust_code: TrustCode = False,
) -> None:
    """Distribution shift from frozen embeddings: MMD, domain classifier, KS; picture; advice."""
    from safeadapt.errors import SafeAdaptError
    from safeadapt.shift import shift_report
    from safeadapt.shift.outputs import chosen_sets, claim_shift_folder, shift_lines, write_shift

    _trust(trust_code)
    claim_shift_folder(out, create=False)  # before any work
    try:
        loaded, factory = _task_and_backbone(task, study)
        splits = loaded.splits()
        report = shift_report(
            factory(),
            {n: splits[n] for n in chosen_sets(splits, sets)},
            level=level,
            n_permutations=permutations,
            max_per_set=max_per_set,
            show_progress=progress,
        )
    except SafeAdaptError as err:
        _fail(err)
    written = write_shift(report, out)
    for line in shift_lines(report):
        typer.echo(line)
    typer.echo(f"written: {', '.join(map(str, written))}")
    if fail_on_shift and report.shift_detected:
        raise typer.Exit(code=1)


@app.command()
@_guarded
def audit(
    task: Annotated[str | None, typer.Option(help="A built-in task (safeadapt list).")] = None,
    study: Annotated[Path | None, typer.Option(help="Use a study's task.")] = None,
) -> None:
    """Group representation and label-group association of the training set."""
    import json

    from safeadapt.bias import audit as run_audit
    from safeadapt.errors import SafeAdaptError

    try:
        loaded, _ = _task_and_backbone(task, study)
        report = run_audit(loaded.train, loaded.label_names)
    except SafeAdaptError as err:
        _fail(err)
    typer.echo(json.dumps(report.to_json(), indent=1))


@app.command()
@_guarded
def curate(
    task: Annotated[str | None, typer.Option(help="A built-in task (safeadapt list).")] = None,
    study: Annotated[Path | None, typer.Option(help="Use a study's task.")] = None,
    correlation: Annotated[
        float | None, typer.Option(help="Target label-group correlation in [-1, 1] (binary).")
    ] = None,
    group_share: Annotated[
        list[str] | None, typer.Option(help="group=share (repeatable; shares sum to 1).")
    ] = None,
    size: Annotated[
        int | None, typer.Option(help="Size of the curated set (default: same).")
    ] = None,
    positive_group: Annotated[
        str | None, typer.Option(help="The group aligned with label 1.")
    ] = None,
    allow_duplicates: Annotated[
        bool, typer.Option(help="Duplicate rows when a cell is short.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Output CSV (text tasks) or .npz (images).")] = Path(
        "safeadapt-out/curated.csv"
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --out file (never an input).")
    ] = False,
    trust_code: TrustCode = False,
) -> None:
    """Resample the training set to a target correlation or group shares (the original is kept)."""
    import json

    from safeadapt.bias import curate as run_curate
    from safeadapt.bias.curated import (
        check_curate_out,
        curated_path,
        parse_group_shares,
        write_curated,
    )
    from safeadapt.errors import SafeAdaptError

    _trust(trust_code)
    try:
        sources = _study_sources(study)
        check_curate_out(out, sources, force)  # before any work
        loaded, _ = _task_and_backbone(task, study)
        check_curate_out(curated_path(out, loaded.modality), sources, force)
        curated, report = run_curate(
            loaded.train,
            target_correlation=correlation,
            group_shares=parse_group_shares(group_share),
            size=size,
            positive_group=positive_group,
            allow_duplicates=allow_duplicates,
            seed=seed,
        )
    except SafeAdaptError as err:
        _fail(err)
    written = write_curated(curated, loaded.label_names, loaded.modality, out)
    typer.echo(json.dumps(report.to_json(), indent=1))
    typer.echo(f"written: {written}")


def _study_sources(study: Path | None) -> list[str | None]:
    """The data files a study reads (none without ``--study``)."""
    if study is None:
        return []
    from safeadapt.study.config import load_study

    spec = load_study(study).task
    return [spec.train, spec.test, spec.validation, *spec.ood.values(), *spec.ood_val.values()]


@app.command("fetch-data")
@_guarded
def fetch_data(
    force: Annotated[bool, typer.Option(help="Fetch again even if cached.")] = False,
) -> None:
    """Fetch and cache the built-in datasets (run once by the setup step)."""
    from safeadapt.data.assets import fetch_builtin_data
    from safeadapt.errors import SafeAdaptError

    try:
        status = fetch_builtin_data(force)
    except SafeAdaptError as err:
        _fail(err)
    for name, line in status.items():
        typer.echo(f"{name}: {line}")


@app.command("list")
@_guarded
def list_choices(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A protocol, safety family, backbone, backbone source (hf:), task "
            "or metric: show every setting with its type, default, range and meaning."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List what a study can name; with NAME, every setting of it."""
    import json

    from safeadapt.catalog import describe, registries

    if name is None:
        kinds = {kind: names for kind, (names, _) in registries().items()}
        if as_json:
            typer.echo(json.dumps(kinds, indent=1))
            return
        for kind, names in kinds.items():
            typer.echo(f"{kind}: {', '.join(names)}")
        typer.echo("`safeadapt list <name>` shows the settings of one.")
        return
    entry = describe(name)
    if as_json:
        typer.echo(json.dumps(entry.to_json(), indent=1, default=str))
        return
    typer.echo(f"{entry.kind} {entry.name}: {entry.summary}")
    typer.echo(f"  in a study: {entry.usage}")
    for s in entry.settings:
        default = s.to_json()["default"]
        shown = "(see its own entry)" if isinstance(default, dict) else repr(default)
        typer.echo(f"  {s.name} ({s.type}) = {shown}")
        for line in (s.allowed and f"allowed: {s.allowed}", s.doc):
            if line:
                typer.echo(f"      {line}")
    if not entry.settings:
        typer.echo("  no settings")
