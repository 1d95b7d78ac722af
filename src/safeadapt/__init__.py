"""safeadapt: adapt a pretrained foundation model to a task without breaking it, and prove it.

The public API is imported lazily so that ``safeadapt --help`` does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Backbone": "safeadapt.backbones",
    "TorchModuleBackbone": "safeadapt.backbones",
    "load_backbone": "safeadapt.backbones",
    "Split": "safeadapt.data",
    "Task": "safeadapt.data",
    "load_builtin_task": "safeadapt.data",
    "load_task": "safeadapt.data",
    "FeatureCache": "safeadapt.data.features",
    "AssetMissing": "safeadapt.errors",
    "CheckpointError": "safeadapt.errors",
    "DataError": "safeadapt.errors",
    "InvalidConfig": "safeadapt.errors",
    "SafeAdaptError": "safeadapt.errors",
    "StaleStudy": "safeadapt.errors",
    "TrainingDiverged": "safeadapt.errors",
    "UntrustedCode": "safeadapt.errors",
    "evaluate": "safeadapt.evaluation",
    "Classifier": "safeadapt.model",
    "Monitor": "safeadapt.monitor",
    "MonitorResult": "safeadapt.monitor",
    "PROTOCOLS": "safeadapt.protocols",
    "FitResult": "safeadapt.protocols",
    "make_protocol": "safeadapt.protocols",
    "SafetyConfig": "safeadapt.safety",
    "RunRecord": "safeadapt.results",
    "StudySummary": "safeadapt.results",
    "VariantSummary": "safeadapt.results",
    "Verdict": "safeadapt.results",
    "load_exported": "safeadapt.study.export",
    "StudyConfig": "safeadapt.study.config",
    "StudyResult": "safeadapt.study.runner",
    "Study": "safeadapt.study.study",
    "run_protocol": "safeadapt.run",
    "allow_code": "safeadapt.trust",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'safeadapt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
