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
