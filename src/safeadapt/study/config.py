"""A study: one backbone and task, several protocols (hyper-parameter grids allowed) x seeds.

Written as YAML (``safeadapt init`` prints a commented example) or built in Python::

    StudyConfig.from_dict({"name": "s", "task": {"builtin": "mnist"}, "protocols": {"lp": {}}})

Every key is checked where it enters: unknown keys get a "did you mean", protocol settings are
validated by the protocol's own config, and a grid is written ``lr: {grid: [1e-5, 3e-5]}`` (a
plain list stays a list, e.g. ``c_grid``). ``expand_runs`` turns the study into concrete runs,
each with a content hash of everything that determines its result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeadapt.config import at_most, build_config, require
from safeadapt.errors import InvalidConfig
from safeadapt.safety.suite import SafetyConfig
from safeadapt.study.checks import ChecksSpec

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Bounds checked before anything is expanded or allocated (validate bounds every size).
MAX_RUNS = 1_000  # a larger study needs --max-runs N
MAX_NAME = 100  # study names, protocol labels, OOD names: folder and file names stay < 255 bytes
MAX_IMAGE_SIZE = 1_024  # pixels a side; every image of a split is held at this size
MAX_STUDY_BYTES = 1_000_000  # a study YAML is settings, not data
MAX_THREADS = 1_024


def printable_name(value: Any, what: str) -> None:
    """A name shown in reports, files and JUnit XML: a string of 1 to ``MAX_NAME`` printable
    characters (no control characters: they break XML and terminals)."""
    require(
        isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isprintable(),
        f"{what} must be 1 to {MAX_NAME} printable characters (no control characters or "
        f"newlines); got {value!r}"[: 200 + MAX_NAME]
        + ".",
    )


@dataclass(frozen=True)
class TaskSpec:
    """Where the data come from: a built-in task, or files / hub datasets (``load_task``)."""

    builtin: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # built-in task options
    train: str | None = None
    test: str | None = None
    validation: str | None = None
    ood: dict[str, str] = field(default_factory=dict)
    text_column: str | None = "text"
    image_column: str | None = None
    label_column: str = "label"
    group_column: str | None = None
    image_size: int | None = None
    max_train: int | None = None
    max_eval: int | None = None
    seed: int = 0  # the train / val / test partition and subsampling seed
    # OOD-validation (choices only): explicit sources per OOD name, else this share of each OOD
    # source is carved off (stratified, seeded); null = no OOD validation (select on ID val only)
    ood_val: dict[str, str] = field(default_factory=dict)
    ood_val_fraction: float | None = 0.5
    # examples of an evaluation split that also appear in an earlier split: drop | warn | keep
    duplicates: str = "drop"

    def __post_init__(self) -> None:
        for key in ("ood", "ood_val", "options"):
            value = getattr(self, key)
            require(
                isinstance(value, Mapping),
                f"study 'task.{key}' must map names to "
                f"{'settings' if key == 'options' else 'sources'}, e.g. {{tweets: tweets.csv}}; "
                f"got {value!r}.",
            )
        for key in [*self.ood, *self.ood_val]:
            printable_name(key, f"study 'task.ood' name {key!r}")
            require(
                "/" not in key and not key.startswith("."),
                f"study 'task.ood' name {key!r} may not contain '/' or start with '.'.",
            )
        require(
            self.image_size is None
            or (
                isinstance(self.image_size, int)
                and not isinstance(self.image_size, bool)
                and 8 <= self.image_size <= MAX_IMAGE_SIZE
            ),
            f"study 'task.image_size' must be an integer from 8 to {MAX_IMAGE_SIZE} pixels (every "
            f"image is held in memory at that size); got {self.image_size!r}.",
        )
        for key, value in [*self.ood.items(), *self.ood_val.items()]:
            require(
                isinstance(value, str),
                f"study 'task.ood' / 'ood_val' entry {key!r} must be a source (a path or "
                f"'hub:<id>'); got {value!r}.",
            )
        files = self.train is not None or self.test is not None
        require(
            (self.builtin is None) != (not files),
            "study 'task': give either 'builtin: <name>' or 'train' and 'test' sources, not both "
            "and not neither.",
        )
        if self.builtin is not None:
            from safeadapt.data.builtin import TASKS

            TASKS.get(self.builtin)
        else:
            require(
                self.train is not None and self.test is not None,
                "study 'task': file tasks need both 'train' and 'test'.",
            )
        require(
            self.duplicates in ("drop", "warn", "keep"),
            f"study 'task.duplicates' must be 'drop', 'warn' or 'keep'; got {self.duplicates!r}.",
        )
        if self.ood_val_fraction is not None:
            require(
                isinstance(self.ood_val_fraction, float | int)
                and not isinstance(self.ood_val_fraction, bool)
                and 0 < self.ood_val_fraction < 1,
                "study 'task.ood_val_fraction' must be a number in (0, 1) or null; got "
                f"{self.ood_val_fraction!r}.",
            )
        require(
            not self.ood_val or self.builtin is None,
            "study 'task.ood_val': explicit OOD-validation sources go with file tasks; built-in "
            "tasks divide their OOD splits (ood_val_fraction).",
        )
        for key in ("max_train", "max_eval"):
            value = getattr(self, key)
            require(
                value is None or (isinstance(value, int) and value >= 2),
                f"study 'task.{key}' must be an integer >= 2 (or absent); got {value!r}.",
            )

    def modality(self) -> str | None:
        """``text`` / ``image`` for file tasks (from the columns); None for built-in tasks
        (known once loaded)."""
        if self.builtin is not None:
            return None
        return "image" if self.image_column else "text"

    def load(self):
        """The :class:`Task` (subsampled when ``max_train`` / ``max_eval`` are set)."""
        if self.builtin is not None:
            from safeadapt.data.builtin import load_builtin_task

            task = load_builtin_task(self.builtin, seed=self.seed, **self.options)
        else:
            from safeadapt.data.sources import load_task

            task = load_task(
                self.train,  # type: ignore[arg-type]
                self.test,  # type: ignore[arg-type]
                self.validation,
                self.ood,
                ood_val=self.ood_val,
                text_column=None if self.image_column else self.text_column,
                image_column=self.image_column,
                label_column=self.label_column,
                group_column=self.group_column,
                image_size=self.image_size,
                seed=self.seed,
            )
        if self.ood_val_fraction is not None and task.ood:
            task = task.with_ood_val(float(self.ood_val_fraction), seed=self.seed)
        task = task.without_leaks(self.duplicates)
        if self.max_train or self.max_eval:
            task = task.subsample(self.max_train, self.max_eval, seed=self.seed)
        return task


@dataclass(frozen=True)
class BackboneSpec:
    name: str | None = None  # default: the packaged backbone of the task's modality
    options: dict[str, Any] = field(default_factory=dict)

    def resolve(self, modality: str) -> BackboneSpec:
        from safeadapt.backbones import DEFAULT_BACKBONE

        return self if self.name else dataclasses.replace(self, name=DEFAULT_BACKBONE[modality])

    def check(self, modality: str) -> Any:
        """Validate the backbone without running code the input names: a ``module:`` builder
        or ``trust_remote_code`` model is refused unless allowed (``safeadapt.trust``) and then
        only found, not imported; any other backbone is built. Returns the backbone, or None
        when it was not built."""
        from safeadapt.backbones import check_code_trust, find_module

        spec = self.resolve(modality)
        name = str(spec.name)
        check_code_trust(name, spec.options)
        if name.startswith("module:"):
            find_module(name)
            return None
        if spec.options.get("trust_remote_code"):
            return None
        return self.factory(modality)()

    def factory(self, modality: str):
        """A loader of fresh backbones for a task of ``modality``; a backbone of the other
        modality is a one-line error."""
        from safeadapt.backbones import load_backbone

        spec = self.resolve(modality)

        def load():
            backbone = load_backbone(spec.name, **spec.options)  # type: ignore[arg-type]
            if backbone.modality != modality:
                a = {"text": "a text", "image": "an image"}
                other = {
                    "text": "minilm, hf:<text model>",
                    "image": "efficientnet-lite0, hf:<vision model>",
                }
                raise InvalidConfig(
                    f"backbone {spec.name!r} is {a[backbone.modality]} model but the task's data "
                    f"is {modality}: use {a[modality]} backbone ({other[modality]}) or "
                    f"{backbone.modality} data."
                )
            return backbone

        return load


@dataclass(frozen=True)
class WandbSpec:
    """``tracking: {wandb: {...}}``: Weights & Biases, offline by default (``wandb sync`` later)."""

    project: str | None = None  # default: the study name
    mode: str = "offline"  # offline | online | disabled
    entity: str | None = None
    dir: str | None = None  # default: the study's output folder

    def __post_init__(self) -> None:
        if self.mode not in ("offline", "online", "disabled"):
            raise InvalidConfig(
                f"study 'tracking.wandb' 'mode' must be offline, online or disabled; "
                f"got {self.mode!r}."
            )


@dataclass(frozen=True)
class TrackingSpec:
    mlflow_uri: str | None = None  # e.g. "sqlite:///mlruns.db" or an http tracking server
    experiment: str | None = None  # default: the study name
    wandb: WandbSpec | None = None

    def __post_init__(self) -> None:
        if self.wandb is not None and not isinstance(self.wandb, WandbSpec):
            wandb = {} if self.wandb is True else self.wandb
            object.__setattr__(
                self, "wandb", build_config(WandbSpec, wandb, "study 'tracking.wandb'")
            )


@dataclass(frozen=True)
class PreflightSpec:
    """Checks run before training (``safeadapt.study.preflight``); ``checks: []`` turns them off."""

    checks: tuple[str, ...] = ("shift", "audit")
    max_per_set: int = 500
    n_permutations: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        from safeadapt.study.preflight import PREFLIGHT

        for c in self.checks:
            PREFLIGHT.get(c)
        require(
            isinstance(self.max_per_set, int) and self.max_per_set >= 10,
            f"study 'preflight.max_per_set' must be an integer >= 10; got {self.max_per_set!r}.",
        )
        at_most(self, {"max_per_set": 1_000_000, "n_permutations": 100_000}, "study 'preflight'")
        require(
            isinstance(self.n_permutations, int) and self.n_permutations >= 1,
            "study 'preflight.n_permutations' must be an integer >= 1; got "
            f"{self.n_permutations!r}.",
        )


@dataclass(frozen=True)
class RecommendSpec:
    """The recommendation rule's knobs (see ``safeadapt.study.recommend``)."""

    id_tolerance: float = 0.01  # candidates: ID accuracy within this of the best

    def __post_init__(self) -> None:
        require(
            0 <= self.id_tolerance <= 1,
            f"study 'recommend.id_tolerance' must be in [0, 1]; got {self.id_tolerance!r}.",
        )


EXECUTORS = ("sequential", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """How the study's runs are executed (``safeadapt.study.executors``): ``sequential`` in this
    process, or ``ray``: one Ray task per run on a local or existing cluster (``address``: None
    starts a local one, ``auto`` joins the running cluster, ``ray://host:port`` a remote one),
    each with ``num_cpus`` / ``num_gpus`` (``resources: {<protocol entry>: {num_gpus: 1}}``
    overrides them per protocol) and retried ``max_retries`` times when its worker dies."""

    name: str = "sequential"
    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 2
    resources: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(
            self.name in EXECUTORS,
            f"study 'executor.name' must be one of {', '.join(EXECUTORS)}; got {self.name!r}.",
        )
        for key in ("num_cpus", "num_gpus"):
            require(
                getattr(self, key) >= 0,
                f"study 'executor.{key}' must be >= 0; got {getattr(self, key)!r}.",
            )
        require(
            isinstance(self.max_retries, int) and self.max_retries >= 0,
            f"study 'executor.max_retries' must be an integer >= 0; got {self.max_retries!r}.",
        )
        require(
            isinstance(self.resources, Mapping),
            "study 'executor.resources' must be a mapping {protocol entry: {num_gpus: ...}}.",
        )
        for label, res in self.resources.items():
            require(
                isinstance(res, Mapping) and set(res) <= {"num_cpus", "num_gpus"},
                f"study 'executor.resources.{label}' takes num_cpus and num_gpus; got {res!r}.",
            )
            for key, value in res.items():
                require(
                    isinstance(value, int | float) and not isinstance(value, bool) and value >= 0,
                    f"study 'executor.resources.{label}.{key}' must be a number >= 0; got {value!r}.",
                )

    def resources_for(self, label: str) -> dict[str, float]:
        """Ray resources of one run of protocol entry ``label``."""
        return {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            **self.resources.get(label, {}),
        }


@dataclass(frozen=True)
class ProtocolEntry:
    """One protocol block: ``label`` (its key in the study), the registered protocol and settings
    (grids as ``{grid: [...]}``)."""

    label: str
    protocol: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class StudyConfig:
    name: str
    task: TaskSpec
    protocols: tuple[ProtocolEntry, ...]
    backbone: BackboneSpec = BackboneSpec()
    seeds: tuple[int, ...] = (0,)
    safety: SafetyConfig | None = SafetyConfig()
    output: str | None = None  # default: safeadapt-out/<name>
    save_models: bool = False
    tracking: TrackingSpec = TrackingSpec()
    recommend: RecommendSpec = RecommendSpec()
    preflight: PreflightSpec = PreflightSpec()
    checks: ChecksSpec | None = None  # pass / fail gates for CI (safeadapt.study.checks)
    executor: ExecutorSpec = ExecutorSpec()
    threads: int | None = None  # cap torch / BLAS threads (a shared machine); None: all

    @property
    def output_dir(self) -> Path:
        return Path(self.output or Path("safeadapt-out") / self.name)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], max_runs: int = MAX_RUNS) -> StudyConfig:
        """The study from its YAML mapping. ``max_runs``: refuse a study of more runs (counted
        before any grid is expanded)."""
        if not isinstance(raw, Mapping):
            raise InvalidConfig(f"a study must be a mapping of settings; got {type(raw).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        _check_keys(raw, known, "study")
        for key in ("name", "task", "protocols"):
            require(key in raw, f"study: missing required key {key!r}.")
        name = raw["name"]
        require(
            isinstance(name, str)
            and SAFE_NAME.match(name) is not None
            and name not in (".", "..")
            and len(name) <= MAX_NAME,
            "study 'name' must be one safe folder name (letters, digits, '.', '_', '-', starting "
            f"with a letter or digit, at most {MAX_NAME} characters); got {str(name)[:120]!r}.",
        )
        output = raw.get("output")
        require(
            output is None or (isinstance(output, str) and output.strip() != ""),
            f"study 'output' must be a folder path (a string); got {output!r}.",
        )
        save_models = raw.get("save_models", False)
        require(
            isinstance(save_models, bool),
            f"study 'save_models' must be true or false; got {save_models!r}.",
        )
        threads = raw.get("threads")
        require(
            threads is None
            or (
                isinstance(threads, int)
                and not isinstance(threads, bool)
                and 1 <= threads <= MAX_THREADS
            ),
            f"study 'threads' must be an integer from 1 to {MAX_THREADS} (or left out for all; "
            f"more than the machine's CPUs are capped at their number); got {threads!r}.",
        )
        seeds = raw.get("seeds", [0])
        seeds = [seeds] if isinstance(seeds, int) else seeds
        require(
            isinstance(seeds, list | tuple)
            and len(seeds) > 0
            and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            and len(set(seeds)) == len(seeds),
            f"study 'seeds' must be a list of distinct integers; got {seeds!r}.",
        )
        safety_raw = raw.get("safety", {})
        safety = None if safety_raw is False else _safety_config(safety_raw)
        backbone_raw = raw.get("backbone", {})
        if isinstance(backbone_raw, str):
            backbone_raw = {"name": backbone_raw}
        config = cls(
            name=name,
            task=build_config(
                TaskSpec, _dict_fields(raw["task"], ("options", "ood", "ood_val")), "study 'task'"
            ),
            protocols=_protocol_entries(raw["protocols"], len(seeds), max_runs),
            backbone=build_config(
                BackboneSpec, _dict_fields(backbone_raw, ("options",)), "study 'backbone'"
            ),
            seeds=tuple(seeds),
            safety=safety,
            output=output,
            save_models=save_models,
            tracking=build_config(TrackingSpec, raw.get("tracking"), "study 'tracking'"),
            recommend=build_config(RecommendSpec, raw.get("recommend"), "study 'recommend'"),
            preflight=build_config(PreflightSpec, raw.get("preflight"), "study 'preflight'"),
            checks=ChecksSpec.from_raw(raw.get("checks")),
            executor=_executor(raw.get("executor")),
            threads=threads,
        )
        unknown = sorted(set(config.executor.resources) - {p.label for p in config.protocols})
        if unknown:
            raise InvalidConfig(
                f"study 'executor.resources': no protocol entry {unknown[0]!r}; the entries "
                f"are {', '.join(p.label for p in config.protocols)}."
            )
        return config

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["protocols"] = {p.label: {"protocol": p.protocol, **p.settings} for p in self.protocols}
        out["safety"] = False if self.safety is None else dataclasses.asdict(self.safety)
        if self.checks is not None:
            c = self.checks
            out["checks"] = {"variant": c.variant, "use": c.use, "shift": c.shift, **c.bounds}
        return out


# settings of the flat ``safety:`` form (before the families) -> (family, setting)
LEGACY_SAFETY = {
    "temperature_scaling": ("calibration", "temperature_scaling"),
    "adv_method": ("adversarial", "method"),
    "adv_eps": ("adversarial", "eps"),
    "adv_steps": ("adversarial", "steps"),
    "adv_max_examples": ("adversarial", "max_examples"),
    "corruption_kinds": ("corruption", "kinds"),
    "corruption_severities": ("corruption", "severities"),
    "corruption_max_examples": ("corruption", "max_examples"),
    "reference_tasks": ("forgetting", "reference_tasks"),
    "reference_max_train": ("forgetting", "max_train"),
    "reference_max_eval": ("forgetting", "max_eval"),
}


def _safety_config(raw: Any) -> SafetyConfig:
    """``safety:`` -- ``metrics``, ``seed`` and one entry per registered family
    (``{family: {...}}`` or ``false``); ``families: [a, b]`` runs those families only. The flat settings of earlier versions
    (``adv_eps``, ``reference_max_train``, ...; see ``LEGACY_SAFETY``) still work."""
    from safeadapt.safety import FAMILIES

    if raw is None or raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidConfig(
            f"study 'safety': expected a mapping of settings or false, got {type(raw).__name__}."
        )
    fields = {f.name for f in dataclasses.fields(SafetyConfig)} - {"families"}
    _check_keys(
        raw, fields | set(FAMILIES.names()) | set(LEGACY_SAFETY) | {"families"}, "study 'safety'"
    )
    chosen = raw.get("families") or {}
    if isinstance(chosen, list | tuple):  # a list names the families to run, the rest are off
        unknown = [f for f in chosen if f not in FAMILIES]
        if unknown:
            raise InvalidConfig(
                f"study 'safety': unknown family {unknown[0]!r} in 'families'; the families "
                f"are {', '.join(FAMILIES.names())}."
            )
        chosen = {f: (f in chosen) and {} for f in FAMILIES.names()}
    elif not isinstance(chosen, Mapping):
        raise InvalidConfig(
            "study 'safety': 'families' is a list of family names or a mapping "
            f"{{family: settings or false}}; got {type(chosen).__name__}."
        )
    families: dict[str, Any] = {}
    for key, value in {**dict(chosen), **raw}.items():
        if key in FAMILIES:
            families[key] = dict(value) if isinstance(value, Mapping) else value
    for key, (name, setting) in LEGACY_SAFETY.items():
        if key not in raw:
            continue
        entry = families.get(name, {})
        if entry is False or entry is None:
            continue  # the family is off: its settings do not matter
        families[name] = {**({} if entry is True else entry), setting: raw[key]}
    rest = {k: v for k, v in raw.items() if k in fields}
    try:
        return build_config(SafetyConfig, {**rest, "families": families}, "study 'safety'")
    except InvalidConfig as err:
        old = [k for k in raw if k in LEGACY_SAFETY]
        if not old:
            raise
        moved = ", ".join(
            f"{k} -> {LEGACY_SAFETY[k][0]}: {{{LEGACY_SAFETY[k][1]}: ...}}" for k in old
        )
        raise InvalidConfig(f"{err} (from the flat setting(s) {moved})") from None


def _executor(raw: Any) -> ExecutorSpec:
    """``executor: ray`` or ``executor: {name: ray, address: auto, ...}``."""
    if isinstance(raw, str):
        raw = {"name": raw}
    return build_config(ExecutorSpec, raw, "study 'executor'")


def _check_keys(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    import difflib

    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidConfig(
                f"{where}: unknown key {key!r}.{hint} Known: {', '.join(sorted(known))}."
            )


def _dict_fields(raw: Any, names: tuple[str, ...]) -> Any:
    """Keep mapping-valued fields as dicts (``build_config`` turns lists into tuples only)."""
    if not isinstance(raw, Mapping):
        return raw
    return {k: (dict(v) if k in names and isinstance(v, Mapping) else v) for k, v in raw.items()}


def _grid_size(label: str, settings: Mapping[str, Any]) -> int:
    """Grid points of one protocol entry, counted without expanding the grid."""
    size = 1
    for key, value in settings.items():
        if isinstance(value, Mapping) and set(value) == {"grid"}:
            values = value["grid"]
            require(
                isinstance(values, list | tuple) and len(values) > 0,
                f"study protocol {label!r}: '{key}.grid' must be a non-empty list.",
            )
            size *= len(values)
    return size


def count_runs(raw: Any, n_seeds: int) -> int:
    """Runs of a study's ``protocols:`` mapping x seeds, counted before expanding a grid."""
    if isinstance(raw, list | tuple):
        return len(raw) * n_seeds
    if not isinstance(raw, Mapping):
        return 0
    return n_seeds * sum(
        _grid_size(str(label), s) if isinstance(s, Mapping) else 1 for label, s in raw.items()
    )


def _protocol_entries(
    raw: Any, n_seeds: int = 1, max_runs: int = MAX_RUNS
) -> tuple[ProtocolEntry, ...]:
    from safeadapt.protocols import PROTOCOLS

    total = count_runs(raw, n_seeds)
    if total > max_runs:
        raise InvalidConfig(
            f"study 'protocols': {total:,} runs (protocol entries x grid points x {n_seeds} "
            f"seeds), above the limit of {max_runs:,}; shrink the grid, or pass --max-runs "
            f"{total} if you mean it."
        )

    if isinstance(raw, list | tuple):  # ["lp", "ft"] shorthand
        raw = {name: {} for name in raw}
    require(
        isinstance(raw, Mapping) and len(raw) > 0,
        "study 'protocols' must map a label to its settings, e.g. {lp: {}, ft: {lr: 1e-5}}.",
    )
    entries = []
    for label, settings in raw.items():
        require(
            settings is None or isinstance(settings, Mapping),
            f"study 'protocols': the settings of {label!r} must be a mapping such as "
            f"{{lr: 1.0e-5}}; got {type(settings).__name__} {settings!r}.",
        )
        settings = dict(settings or {})
        require(
            isinstance(label, str) and label and "/" not in label,
            f"study 'protocols': labels must be non-empty strings without '/'; got {label!r}.",
        )
        printable_name(label, "study 'protocols' label")
        name = settings.pop("protocol", label)
        PROTOCOLS.get(name)  # unknown protocol -> "did you mean"
        entry = ProtocolEntry(label, name, settings)
        for combo in _grid(entry):  # every grid point must be a valid config
            _make(entry.protocol, combo, label)
        entries.append(entry)
    return tuple(entries)


def _grid(entry: ProtocolEntry) -> list[dict[str, Any]]:
    """Every combination of ``{grid: [...]}`` values (one dict if there is no grid)."""
    fixed, axes = {}, {}
    for key, value in entry.settings.items():
        if isinstance(value, Mapping) and set(value) == {"grid"}:
            values = value["grid"]
            require(
                isinstance(values, list | tuple) and len(values) > 0,
                f"study protocol {entry.label!r}: '{key}.grid' must be a non-empty list.",
            )
            axes[key] = list(values)
        else:
            fixed[key] = value
    combos = []
    for values in itertools.product(*axes.values()):
        combos.append({**fixed, **dict(zip(axes, values, strict=True))})
    return combos


def _make(protocol: str, settings: dict[str, Any], label: str):
    from safeadapt.protocols import make_protocol

    try:
        return make_protocol(protocol, settings)
    except InvalidConfig as err:
        raise InvalidConfig(f"study protocol {label!r}: {err}") from None


@dataclass(frozen=True)
class RunSpec:
    """One concrete run of a study."""

    variant: str  # label plus grid values, e.g. "ft[lr=1e-05]"
    label: str
    protocol: str
    settings: dict[str, Any]
    seed: int
    key: str  # content hash: same key <=> same result

    @property
    def folder_name(self) -> str:
        """The variant as a folder-name part (letters, digits and ``-_.=``; the rest ``_``)."""
        return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in self.variant)

    @property
    def run_id(self) -> str:
        return f"{self.folder_name}-seed{self.seed}-{self.key[:10]}"


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def expand_runs(
    config: StudyConfig, modality: str, content: Mapping[str, str] | None = None
) -> list[RunSpec]:
    """Protocols x grid points x seeds, in config order; each with its content hash.

    ``content`` holds the fingerprints of what the settings only name: the loaded data
    (``Task.fingerprint``) and the backbone's weights (``Backbone.fingerprint``). The runner always
    passes them, so a run is reused only when the data and weights are byte-for-byte the same.
    """
    from safeadapt.protocols.start import START_RULE

    backbone = dataclasses.asdict(config.backbone.resolve(modality))
    common = {
        "task": dataclasses.asdict(config.task),
        "backbone": backbone,
        "safety": None if config.safety is None else dataclasses.asdict(config.safety),
        "content": dict(content or {}),
        "format": 2,  # bump when records change meaning without a setting changing
    }
    if config.safety is None:  # runs without the suite score calibration too (since 0.1.0)
        common["metrics"] = "prediction-v2"
    runs = []
    for entry in config.protocols:
        grid_keys = [k for k, v in entry.settings.items() if isinstance(v, Mapping)]
        for combo in _grid(entry):
            proto = _make(entry.protocol, combo, entry.label)
            resolved = dataclasses.asdict(proto.config)
            tag = ",".join(f"{k}={combo[k]}" for k in grid_keys)
            variant = f"{entry.label}[{tag}]" if tag else entry.label
            for seed in config.seeds:
                payload = {**common, "protocol": entry.protocol, "config": resolved, "seed": seed}
                if resolved.get("keep_start"):  # the rule that may keep the start decides too
                    payload["start_rule"] = START_RULE
                key = _hash(payload)
                runs.append(RunSpec(variant, entry.label, entry.protocol, combo, seed, key))
    _check_folders(runs)
    return runs


def _check_folders(runs: list[RunSpec]) -> None:
    """Distinct variants must keep distinct run folders (and fit a file name): ``"a b"`` and
    ``"a_b"`` clean to the same folder name, so one would vanish from the results."""
    seen: dict[str, str] = {}
    for spec in runs:
        folder = spec.folder_name
        other = seen.setdefault(folder, spec.variant)
        if other != spec.variant:
            raise InvalidConfig(
                f"study 'protocols': variants {other!r} and {spec.variant!r} would share the run "
                f"folder name {folder!r} (characters other than letters, digits and -_.= become "
                "'_'); rename one of the protocol labels."
            )
        if len(spec.run_id.encode()) > 200:
            raise InvalidConfig(
                f"study 'protocols': variant {spec.variant[:60]!r}... makes a run folder name of "
                f"{len(spec.run_id)} characters (at most 200); use a shorter label or fewer grid "
                "settings."
            )


def load_study(path: str | Path, max_runs: int = MAX_RUNS) -> StudyConfig:
    """Read and validate a study YAML file (safe YAML, UTF-8, no aliases, no duplicate keys, at
    most ``MAX_STUDY_BYTES``; a study of more than ``max_runs`` runs is refused)."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise InvalidConfig(f"study file {str(path)!r} is a directory; give the study's YAML file.")
    if not path.exists():
        raise InvalidConfig(f"study file {str(path)!r} does not exist.")
    if not path.is_file():
        raise InvalidConfig(
            f"study file {str(path)!r} is not a regular file (a pipe or device?); give a YAML file."
        )
    size = path.stat().st_size
    if size > MAX_STUDY_BYTES:
        raise InvalidConfig(
            f"study file {str(path)!r} is {size:,} bytes, above the limit of "
            f"{MAX_STUDY_BYTES:,}: a study holds settings; put data in files it names."
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidConfig(
            f"study file {str(path)!r} is not UTF-8 text (byte {err.start}); re-save it as UTF-8."
        ) from None
    try:
        raw = yaml.load(text, Loader=_study_loader())  # a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = " ".join(str(err.problem or err.context or err).split())
        raise InvalidConfig(f"study file {str(path)!r} is not valid YAML: {what}{where}.") from None
    except yaml.YAMLError as err:
        what = " ".join(str(err).split())
        raise InvalidConfig(f"study file {str(path)!r} is not valid YAML: {what}.") from None
    except RecursionError:
        raise InvalidConfig(f"study file {str(path)!r} nests too deeply to be a study.") from None
    return StudyConfig.from_dict(raw or {}, max_runs=max_runs)


def _study_loader():
    import yaml

    class StudyLoader(yaml.SafeLoader):
        """Safe YAML without anchors / aliases -- a few hundred bytes of nested aliases expand
        to gigabytes ("billion laughs"), and a study never needs them -- and without duplicate
        keys (YAML would keep the last silently: two ``seeds:``, two ``ft:`` entries)."""

        def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
            if self.check_event(yaml.events.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed in a study file", event.start_mark
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
            if isinstance(node, yaml.MappingNode):
                lines: dict[Any, int] = {}
                for key_node, _ in node.value:
                    key = self.construct_object(key_node, deep=True)
                    line = key_node.start_mark.line + 1
                    try:
                        seen = key in lines
                    except TypeError:
                        continue  # an unhashable key: SafeLoader reports it
                    if seen:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {key!r} on lines {lines[key]} and {line}; keep one",
                            key_node.start_mark,
                        )
                    lines[key] = line
            return super().construct_mapping(node, deep)

    return StudyLoader


EXAMPLE_YAML = """\
# A safeadapt study: which adaptation protocol is accurate *and* safe on my model and data?
# Run it with `safeadapt run study.yaml`; check it with `safeadapt validate study.yaml`.
name: my-study

# The data: a built-in task (safeadapt list) ...
task:
  builtin: vader-sentiment     # movie-review sentiment; OOD: tweets, Amazon, NYT snippets
  max_train: 1200              # cap the ID training set (stratified, seeded); drop for all
  max_eval: 800                # cap each evaluation split
# ... or your own files (CSV / TSV / JSON / parquet / image folders / hub:<dataset>):
#  train: data/train.csv
#  test: data/test.csv
#  validation: data/val.csv    # optional: else 10% of train is held out
#  ood: {production: data/prod.csv}
#  text_column: text           # or image_column: image
#  label_column: label
#  group_column: region        # optional group attribute -> worst-group accuracy, gaps
#  ood_val: {production: data/prod_val.csv}  # optional: else half of each OOD source is
#                              # carved off for choices (ood_val_fraction: 0.5; null = ID val only)
#  duplicates: drop            # cross-split duplicates: drop (default) | warn | keep

backbone:
  name: minilm                 # packaged default for text; efficientnet-lite0 for images;
                               # hf:<hub id or local folder> for any Hugging Face model
  options: {max_length: 64}

# Each key is a label; 'protocol' defaults to the label. {grid: [...]} expands a grid.
protocols:
  lp: {}
  ft: {epochs: 2, lr: 3.0e-5, head_lr: 1.0e-3}
  lp-ft: {epochs: 2, lr: {grid: [1.0e-5, 3.0e-5]}}

seeds: [0, 1]

# The safety suite: every registered family (`safeadapt list`) runs at its defaults unless
# named here with settings or `false`. Attacks and corruptions use a capped, seeded sample.
# `safety: false` scores the prediction metrics only.
safety:
  adversarial: {eps: [0.0, 0.02, 0.1], steps: 5, max_examples: 64}  # text: embedding space
  corruption: {max_examples: 120}
  forgetting: {max_train: 400, max_eval: 200}
  # conformal: {coverage: 0.9, method: lac}
  # flips: false

# output: safeadapt-out/my-study   # default
# save_models: false               # true: keep a safetensors checkpoint of every run
# tracking: {mlflow_uri: "sqlite:///mlruns.db"}   # optional MLflow logging
# tracking: {wandb: {project: my-study, mode: offline}}   # optional Weights & Biases logging
# executor: {name: ray, address: auto, num_cpus: 4, resources: {ft: {num_gpus: 1}}}   # Ray
# threads: 4            # cap torch / BLAS threads on a shared machine (Ray: num_cpus per task)
# recommend: {id_tolerance: 0.01}  # see the report's "how the recommendation is made"
# preflight: {checks: [shift, audit], max_per_set: 500}  # before training; checks: [] = off
# checks:                          # CI gates on the recommended variant: `safeadapt run` exits 1
#   max_ece: 0.15                  # min_<score> / max_<score> for any score of the table
#   min_ood_accuracy: 0.6
#   min_forgetting: -0.02          # forgetting is after - before: at most 2 points lost
#   use: interval                  # check the pessimistic end of the 95 % interval
#   shift: warn                    # fail: a pre-flight shift fails the study
"""
