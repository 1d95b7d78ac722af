"""The library's exceptions. Each message says what was expected, what came in and what to do."""


class SafeAdaptError(Exception):
    """Base class of every error safeadapt raises on purpose."""


class InvalidConfig(SafeAdaptError, ValueError):
    """A configuration value is unknown, out of range or inconsistent."""


class DataError(SafeAdaptError, ValueError):
    """Input data are malformed: missing column, empty split, NaN, unknown label, bad shape."""


class AssetMissing(SafeAdaptError, FileNotFoundError):
    """A built-in dataset or packaged weight is not installed; the message says how to get it."""


class CheckpointError(SafeAdaptError, RuntimeError):
    """A checkpoint or cache file is corrupt, incomplete or from an incompatible model."""


class UntrustedCode(InvalidConfig):
    """An input names code to run (``module:`` backbones, ``trust_remote_code``) and the person
    running the command did not allow it (``--trust-code``; ``safeadapt.trust``)."""


class TrainingDiverged(SafeAdaptError, FloatingPointError):
    """Training made the loss, the weights or the outputs non-finite (NaN / inf); nothing of the
    run is stored. The message names the setting to change (usually ``lr``)."""


class StaleStudy(InvalidConfig):
    """A finished study's summary was made from other inputs than the study's current ones
    (data edited in place, settings changed): ``check`` and ``export`` refuse to judge it."""
