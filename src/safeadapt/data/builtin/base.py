"""The built-in tasks' registry (``TASKS``), ``load_builtin_task`` and what their loaders share:
seeded stratified partitions, slice groups, far-OOD sets that are skipped with a note when their
data are absent."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from safeadapt._registry import Registry
from safeadapt.data.task import Split, Task
from safeadapt.errors import AssetMissing

TASKS: Registry[Callable[..., Task]] = Registry("built-in task")

DEFAULT_TASK = {"text": "vader-sentiment", "image": "mnist"}
VADER_THRESHOLD = 0.5
FAR_OOD_SIZE = 2000


def _median_slices(values: np.ndarray, threshold: float, names: tuple[str, str]) -> np.ndarray:
    """Two slices: ``names[0]`` where ``values <= threshold``, else ``names[1]``."""
    return np.where(values <= threshold, names[0], names[1]).astype(object)


def _with_groups(split: Split, groups: np.ndarray) -> Split:
    return Split(split.name, split.inputs, split.labels, groups, split.sources)


def _word_counts(texts) -> np.ndarray:
    return np.asarray([len(t.split()) for t in texts])


def _ink(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64).mean(1)


def _far_ood(name: str, loader: Callable[[], Split], notes: list[str]) -> dict[str, Split]:
    """A far-OOD set when its data are installed; otherwise a note saying how to get it."""
    try:
        return {name: loader()}
    except AssetMissing as err:
        notes.append(f"far-OOD set {name!r} skipped: {err}")
        return {}


# a built-in task's sample sizes (options such as size, per_class): bounded before anything
# is drawn, as every size a study names
MAX_TASK_SIZE = 1_000_000


def load_builtin_task(name: str, seed: int = 0, **options: object) -> Task:
    """Build a built-in task. ``seed`` fixes the train / val / test partition. Options are the
    loader's keyword parameters, each checked against the rule it declares (``Annotated``)
    before the loader runs; an unknown one is refused with the list of known ones."""
    from safeadapt.config import check_options

    loader = TASKS.get(name)
    check_options(loader, options, f"task {name!r}", skip=("seed",))
    return loader(seed=seed, **options)


def _partition(labels: np.ndarray, fractions: tuple[float, float], seed: int):
    """Seeded train / val / test index arrays, stratified per class; ``fractions`` = (val, test)."""
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val, n_test = (round(f * len(idx)) for f in fractions)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def _partitioned(
    whole: Split,
    label_names: tuple[str, ...],
    fractions: tuple[float, float],
    seed: int,
    modality: str = "text",
    **task: object,
) -> Task:
    """A task named after ``whole`` from a seeded, stratified partition of it."""
    tr, va, te = _partition(whole.labels, fractions, seed)
    return Task(
        name=whole.name,
        modality=modality,
        label_names=label_names,
        train=whole.subset(tr, "train"),
        val=whole.subset(va, "val"),
        test=whole.subset(te, "test"),
        **task,  # type: ignore[arg-type]
    )
