"""Checks of a study against what only its data and backbone reveal (``safeadapt validate``):
gate bounds that name splits the task does not have or scores the study will not measure, and
sizes beyond what the backbone can hold. Nothing here trains or allocates."""

from __future__ import annotations

from typing import Any

from safeadapt.errors import InvalidConfig

# scores that only the safety suite measures beyond the prediction metrics
PREDICTION_SCORES = (
    "val_accuracy", "ood_val_accuracy", "val_ece", "id_accuracy", "ood_accuracy", "ece", "nll",
    "brier", "fit_seconds", "eval_seconds", "trainable_parameters", "peak_rss_mb",
)  # fmt: skip


def check_against(config, task=None, backbone=None) -> None:
    """Raise :class:`InvalidConfig` for a bound on a split the task lacks, a bound on a family
    score with ``safety: false``, or a LoRA rank beyond the backbone's width."""
    checks = config.checks
    if checks is not None:
        for name in checks.bounds:
            key = name.partition("_")[2]
            if key.startswith("accuracy:ood:") and task is not None:
                split = key.removeprefix("accuracy:ood:")
                if split not in task.ood:
                    raise InvalidConfig(
                        f"study 'checks': {name!r} names OOD split {split!r}, which the task does "
                        f"not have; its OOD splits are {', '.join(sorted(task.ood)) or 'none'}."
                    )
            elif (
                config.safety is None
                and key not in PREDICTION_SCORES
                and not key.startswith("accuracy:")
            ):
                raise InvalidConfig(
                    f"study 'checks': {name!r} is a safety-suite score, and the study has "
                    "'safety: false' (accuracy, calibration and cost only); remove 'safety: "
                    "false' or that bound."
                )
    check_reference_data(config)
    if backbone is not None:
        _check_lora(config, backbone)


def check_reference_data(config) -> None:
    """Every local source the forgetting family's ``reference_data`` names exists, and an entry
    whose sources are all local reads with the columns it names (checked before any training:
    those probes run after it). ``hub:`` sources load when they are probed."""
    from safeadapt.errors import SafeAdaptError
    from safeadapt.safety.forgetting import ReferenceSource, reference_data_config

    forgetting = reference_data_config(config)
    for name, part, source, path in forgetting.local_sources() if forgetting else ():
        if path is None:
            raise InvalidConfig(
                f"safety 'forgetting' 'reference_data' {name!r} {part}: {source} does not "
                "exist; give a file, an image folder, a save_to_disk folder or hub:<id>."
            )
    for name, entry in (forgetting.reference_data or {}).items() if forgetting else ():
        if any(str(v).startswith("hub:") for k, v in entry.items() if not k.endswith("column")):
            continue
        try:
            ReferenceSource(**entry).load(name, seed=0)
        except SafeAdaptError as err:
            raise InvalidConfig(
                f"safety 'forgetting' 'reference_data' {name!r} does not read: {err}"
            ) from None


def _check_lora(config, backbone: Any) -> None:
    from safeadapt.protocols.tuning import check_lora_rank
    from safeadapt.study.plan import grid_points, make_protocol_config

    for entry in config.protocols:
        for combo in grid_points(entry):
            cfg = make_protocol_config(entry.protocol, combo, entry.label).config
            tune = getattr(cfg, "tune", None)
            if getattr(tune, "name", None) == "lora":
                targets = list(tune.targets) if tune.targets else None
                try:
                    check_lora_rank(backbone, targets, tune.r)
                except InvalidConfig as err:
                    raise InvalidConfig(f"study protocol {entry.label!r}: {err}") from None
