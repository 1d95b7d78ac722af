"""A study's plan: protocol entries x grid points x seeds, counted before they are expanded
(``count_runs``), each run with a content hash of everything that determines its result
(``expand_runs``) and a folder no other run shares."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safeadapt.config import record_form, require
from safeadapt.errors import InvalidConfig
from safeadapt.results import RunKey
from safeadapt.study.specs import MAX_RUNS, ProtocolEntry, printable_name


def _grid_size(label: str, settings: Mapping[str, Any]) -> int:
    """Grid points of one protocol entry, counted without expanding the grid."""
    size = 1
    for key, value in settings.items():
        if _is_grid(value):
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


def protocol_entries(
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
        for combo in grid_points(entry):  # every grid point must be a valid config
            make_protocol_config(entry.protocol, combo, label)
        entries.append(entry)
    return tuple(entries)


def _is_grid(value: Any) -> bool:
    """``{grid: [...]}``: the values a setting takes across variants (a nested setting's own
    mapping is not a grid)."""
    return isinstance(value, Mapping) and set(value) == {"grid"}


def grid_points(entry: ProtocolEntry) -> list[dict[str, Any]]:
    """Every combination of ``{grid: [...]}`` values (one dict if there is no grid)."""
    fixed, axes = {}, {}
    for key, value in entry.settings.items():
        if _is_grid(value):
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


def make_protocol_config(protocol: str, settings: dict[str, Any], label: str):
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
        from safeadapt.readback import safe_part

        return safe_part(self.variant)

    @property
    def run_id(self) -> str:
        return f"{self.folder_name}-seed{self.seed}-{self.key[:10]}"

    def run_key(self) -> RunKey:
        """How a stored record names this run."""
        return RunKey(
            self.run_id, self.variant, self.label, self.protocol, self.settings, self.seed,
            self.key,
        )  # fmt: skip


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def expand_runs(config: Any, modality: str, content: Any = None) -> list[RunSpec]:
    """Protocols x grid points x seeds, in config order; each with its content hash.

    ``content`` (a ``freshness.Content``, or any mapping) holds the fingerprints of what the
    settings only name: the loaded data
    (``Task.fingerprint``) and the backbone's weights (``Backbone.fingerprint``). The runner always
    passes them, so a run is reused only when the data and weights are byte-for-byte the same.
    """
    from safeadapt.config import key_form
    from safeadapt.protocols.start import START_RULE

    backbone = dataclasses.asdict(config.backbone.resolve(modality))
    common = {
        "task": config.task.key_form(),
        "backbone": backbone,
        "safety": None if config.safety is None else key_form(config.safety),
        "content": content._asdict() if hasattr(content, "_asdict") else dict(content or {}),
        "format": 2,  # bump when records change meaning without a setting changing
    }
    if config.safety is None:  # runs without the suite score calibration too (since 0.1.0)
        common["metrics"] = "prediction-v2"
    else:  # FPR@95, conformal thresholds, relative Mahalanobis, AURC ties, temperature bound
        common["metrics"] = "safety-v2"  # redefined (issue 38): earlier records are redone
    runs = []
    for entry in config.protocols:
        grid_keys = [k for k, v in entry.settings.items() if _is_grid(v)]
        for combo in grid_points(entry):
            proto = make_protocol_config(entry.protocol, combo, entry.label)
            resolved = record_form(proto.config)
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
    from safeadapt.readback import skeleton

    labels: dict[str, str] = {}
    for spec in runs:
        other = labels.setdefault(skeleton(spec.label), spec.label)
        if other != spec.label:
            raise InvalidConfig(
                f"study 'protocols': labels {other!r} and {spec.label!r} look the same (they "
                "differ in case, spacing or look-alike letters of another script); rename one."
            )
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
