"""A study: one backbone and task, several protocols (hyper-parameter grids allowed) x seeds.

Written as YAML (``safeadapt init`` prints a commented example) or built in Python::

    StudyConfig.from_dict({"name": "s", "task": {"builtin": "mnist"}, "protocols": {"lp": {}}})

Every key is checked where it enters: unknown keys get a "did you mean", protocol settings are
validated by the protocol's own config, and a grid is written ``lr: {grid: [1e-5, 3e-5]}`` (a
plain list stays a list, e.g. ``c_grid``). ``study.plan.expand_runs`` turns the study into runs,
each with a content hash of everything that determines its result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeadapt._registry import did_you_mean
from safeadapt.config import build_config, check_seed, require
from safeadapt.errors import InvalidConfig
from safeadapt.safety.suite import SafetyConfig
from safeadapt.study.checks import ChecksSpec
from safeadapt.study.plan import (  # noqa: F401  (the study's plan, named here too)
    RunSpec,
    count_runs,
    expand_runs,
    protocol_entries,
)
from safeadapt.study.specs import (  # noqa: F401  (the study's parts, named here too)
    MAX_NAME,
    MAX_RUNS,
    MAX_STUDY_BYTES,
    MAX_THREADS,
    SAFE_NAME,
    BackboneSpec,
    ExecutorSpec,
    PreflightSpec,
    ProtocolEntry,
    RecommendSpec,
    TaskSpec,
    TrackingSpec,
    WandbSpec,
)


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
        for seed in seeds:
            check_seed(seed, "study 'seeds' entry")
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
            protocols=protocol_entries(raw["protocols"], len(seeds), max_runs),
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
    for key in raw:
        if key not in known:
            hint = did_you_mean(key, known)
            raise InvalidConfig(
                f"{where}: unknown key {key!r}.{hint} Known: {', '.join(sorted(known))}."
            )


def _dict_fields(raw: Any, names: tuple[str, ...]) -> Any:
    """Keep mapping-valued fields as dicts (``build_config`` turns lists into tuples only)."""
    if not isinstance(raw, Mapping):
        return raw
    return {k: (dict(v) if k in names and isinstance(v, Mapping) else v) for k, v in raw.items()}


def load_study(path: str | Path, max_runs: int = MAX_RUNS) -> StudyConfig:
    """Read and validate a study YAML file (safe YAML, UTF-8, no aliases, no duplicate keys, at
    most ``MAX_STUDY_BYTES``; a study of more than ``max_runs`` runs is refused)."""
    return StudyConfig.from_dict(read_study_file(path), max_runs=max_runs)


def read_study_file(path: str | Path) -> dict[str, Any]:
    """A study YAML file's mapping, read as ``load_study`` reads it (checked, not validated)."""
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
    return raw or {}


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
                    if isinstance(key, bool):  # YAML 1.1: yes / no / on / off / y / n
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"key {key_node.value!r} on line {line} reads as {str(key).lower()} "
                            f"in YAML; quote it ('{key_node.value}': ...) to use it as a name",
                            key_node.start_mark,
                        )
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
#  extra_train: {monitored: data/labelled_drift.csv}  # optional: labelled rows always added
#                              # to the training sample (e.g. from safeadapt monitor)

backbone:
  name: minilm                 # packaged default for text; efficientnet-lite0 for images;
                               # hf:<hub id or local folder> for any Hugging Face model
  options: {max_length: 64}

# Each key is a label; 'protocol' defaults to the label. {grid: [...]} expands a grid.
protocols:
  lp: {}
  ft: {epochs: 2, lr: 3.0e-5, optimizer: {head_lr: 1.0e-3}}
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
