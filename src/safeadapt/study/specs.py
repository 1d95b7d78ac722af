"""The parts of a study's settings, each a frozen dataclass checked where it enters: the task,
the backbone, tracking, pre-flight checks, the recommendation rule, the executor, one protocol
entry; and the sizes a study may ask for (bounded before anything is allocated)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from safeadapt._registry import Registry
from safeadapt.config import at_most, build_config, check_seed, key_form, require
from safeadapt.errors import InvalidConfig

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
    # labelled rows added to the training split after its sampling, so they are always used
    # (e.g. the windows in which a monitor saw drift, once their labels came back): {name: source}
    extra_train: dict[str, str] = field(default_factory=dict, metadata={"late": True})

    def __post_init__(self) -> None:
        check_seed(self.seed, "study 'task.seed'")
        for key in ("ood", "ood_val", "options", "extra_train"):
            value = getattr(self, key)
            require(
                isinstance(value, Mapping),
                f"study 'task.{key}' must map names to "
                f"{'settings' if key == 'options' else 'sources'}, e.g. {{tweets: tweets.csv}}; "
                f"got {value!r}.",
            )
        for key in [*self.ood, *self.ood_val, *self.extra_train]:
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
        for key, value in [*self.ood.items(), *self.ood_val.items(), *self.extra_train.items()]:
            require(
                isinstance(value, str),
                f"study 'task.ood' / 'ood_val' / 'extra_train' entry {key!r} must be a source (a path or "
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

    def _with_ood_sources(self, task):
        """A built-in task with the study's own OOD sources added (e.g. the windows in which a
        monitor saw drift), their labels read by the task's class names."""
        import dataclasses

        from safeadapt.data.rows import load_split

        column = self.image_column or ("image" if task.modality == "image" else self.text_column)
        extra = {}
        for name, source in self.ood.items():
            require(
                name not in task.ood,
                f"study 'task.ood': {name!r} is already an OOD split of the built-in task "
                f"{self.builtin!r}; give your source another name.",
            )
            extra[name] = load_split(source, f"ood:{name}", modality=task.modality,
                                     input_column=column or "text", label_column=self.label_column,
                                     label_names=task.label_names)  # fmt: skip
        return dataclasses.replace(task, ood={**task.ood, **extra})

    def load(self):
        """The :class:`Task` (subsampled when ``max_train`` / ``max_eval`` are set); a built-in
        task gains the OOD sources the study names."""
        if self.builtin is not None:
            from safeadapt.data.builtin import load_builtin_task

            task = load_builtin_task(self.builtin, seed=self.seed, **self.options)
            if self.ood:
                task = self._with_ood_sources(task)
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
        if self.extra_train:  # after sampling: every extra row is used; no copy in an eval split
            task = self._with_extra_train(task).without_leaks(self.duplicates)
        return task

    def key_form(self) -> dict[str, Any]:
        """The settings as run and pre-flight keys hash them: a setting added later (``late``) is
        left out while it is at its default, so studies of earlier releases keep their keys."""
        return key_form(self)

    def _with_extra_train(self, task):
        """The task with the study's extra labelled rows appended to its training split, their
        labels read by the task's class names (where the task has groups, theirs is "unknown":
        the pre-flight audit counts them as such)."""
        import dataclasses

        from safeadapt.data.rows import load_split
        from safeadapt.data.task import joined

        column = self.image_column or ("image" if task.modality == "image" else self.text_column)
        parts = [
            load_split(source, f"train+{name}", modality=task.modality,
                       input_column=column or "text", label_column=self.label_column,
                       label_names=task.label_names)
            for name, source in self.extra_train.items()
        ]  # fmt: skip
        return dataclasses.replace(task, train=joined("train", [task.train, *parts]))


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
        from safeadapt.backbones import check_code_trust, source_of

        spec = self.resolve(modality)
        name = str(spec.name)
        check_code_trust(name, spec.options)
        source = source_of(name)
        if source is not None and not source.check(name, spec.options):
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
    """``tracking:``: MLflow (``mlflow: {uri, experiment}``, or the flat ``mlflow_uri`` /
    ``experiment``) and / or Weights & Biases (``wandb: {...}``)."""

    mlflow_uri: str | None = None  # e.g. "sqlite:///mlruns.db" or an http tracking server
    experiment: str | None = None  # default: the study name
    wandb: WandbSpec | None = None
    mlflow: dict[str, Any] | None = None  # {uri, experiment}: the nested spelling of the two above

    def __post_init__(self) -> None:
        if self.mlflow is not None:
            if not isinstance(self.mlflow, Mapping) or set(self.mlflow) - {"uri", "experiment"}:
                raise InvalidConfig(
                    "study 'tracking.mlflow' must be a mapping of 'uri' and 'experiment'; got "
                    f"{self.mlflow!r}."
                )
            for flat, nested in (("mlflow_uri", "uri"), ("experiment", "experiment")):
                value = self.mlflow.get(nested)
                if value is not None and getattr(self, flat) not in (None, value):
                    raise InvalidConfig(
                        f"study 'tracking' gives '{flat}' and 'mlflow.{nested}' different values; "
                        "keep one."
                    )
                if value is not None:
                    object.__setattr__(self, flat, str(value))
            object.__setattr__(self, "mlflow", None)  # one spelling from here on
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

        check_seed(self.seed, "study 'preflight.seed'")
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


# executor name -> the function that runs a study's runs; filled by safeadapt.study.executors
# (imported with the safeadapt.study package), read here to validate 'executor.name'
EXECUTORS: Registry[Callable[..., None]] = Registry("executor")


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
            f"study 'executor.name' must be one of {', '.join(EXECUTORS.in_order())}; got "
            f"{self.name!r}.",
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
