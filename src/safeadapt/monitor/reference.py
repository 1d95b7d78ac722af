"""The monitoring reference an export carries: what "like the data the model was adapted on"
looks like, so that a window of production inputs can be compared with it without the study.

Built from a seeded, class-stratified sample of the ID-*validation* split (at most
``REFERENCE_SIZE`` examples). Validation, not training data: the adapted model was fitted on its
training set, whose features and confidences are not what new in-distribution inputs give (an
overfit model is surer there); validation inputs are new to the model, as production inputs are.

Stored as ``monitor/reference.safetensors`` (checksummed; never pickle) -- the pretrained and
the adapted backbone's features, the logits and the labels -- and ``monitor/reference.json``:
the temperature, the ATC threshold, the OOD detector's threshold and its reference rate, and how
wrong the accuracy estimates were on the study's own labelled shifted splits (OOD-validation,
ID test), so an estimate in production comes with its track record.
Size: ``REFERENCE_SIZE x (2 x feature dim + classes) x 4`` bytes (1,000 MiniLM rows: 3.1 MB).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.errors import CheckpointError, DataError
from safeadapt.monitor.signals import stats

REFERENCE_DIR = "monitor"
TENSORS, META = "reference.safetensors", "reference.json"
REFERENCE_SIZE = 1_000
REFERENCE_SCHEMA = 1
OOD_FPR = 0.05  # the detector's threshold flags this share of ID validation


@dataclass(frozen=True)
class EstimateCheck:
    """How one accuracy estimate did on a labelled split of the study (never used to choose)."""

    split: str
    n: int
    accuracy: float
    atc: float
    doc: float
    aline: float | None = None  # agreement-on-the-line, where the export carries an ensemble


@dataclass(frozen=True)
class Reference:
    """The reference sample's tensors and what was fitted on it (see the module docstring)."""

    pretrained: Tensor  # (N, D) pretrained backbone features
    adapted: Tensor  # (N, D) adapted backbone features
    logits: Tensor  # (N, K) adapted model
    labels: np.ndarray  # (N,)
    label_names: tuple[str, ...]
    temperature: float
    accuracy: float
    confidence_mean: float  # temperature-scaled, over the reference
    atc_threshold: float
    ood_threshold: float  # fitted on one half of the reference ...
    ood_reference_flagged: int  # ... and the rate counted on the other half
    ood_reference_n: int
    same_backbone: bool  # the adaptation left the backbone as it was (LP): one feature pass
    checks: tuple[EstimateCheck, ...] = ()
    seed: int = 0
    # the kNN detector on the adapted features: its bank is the half the energy threshold was
    # fitted on, its threshold fitted there too (leave-one-out), its ID rate counted on the
    # other half; None in references exported before it existed (their windows skip it)
    knn_k: int | None = None
    knn_threshold: float | None = None
    knn_reference_flagged: int | None = None
    # the ensemble for agreement-on-the-line (``monitor.members``): K heads on the adapted
    # features, weight (K x classes, D) and bias (K, classes); None: exported without one
    member_weight: Tensor | None = None
    member_bias: Tensor | None = None

    @property
    def members(self) -> int:
        return 0 if self.member_bias is None else len(self.member_bias)

    def ensemble_predictions(self, features: Tensor, logits: Tensor) -> np.ndarray:
        """``(1 + K, rows)``: the deployed model's predicted classes, then each member's."""
        from safeadapt.monitor.members import ensemble_predictions

        return ensemble_predictions(self.member_weight, self.member_bias, features, logits)

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(1).numpy()

    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """The seeded halves of the reference: the one detectors are fitted on (the kNN bank)
        and the one their ID rate is counted on."""
        return split_halves(len(self.labels), self.seed)

    def slips(self) -> tuple[np.ndarray, np.ndarray]:
        """Per reference row, what ATC and DoC count for it minus whether the model is right
        (above the threshold or not; the temperature-scaled confidence): their spread sizes
        the estimates' intervals (``stats.estimate_interval``)."""
        right = (self.predictions == np.asarray(self.labels)).astype(np.float64)
        above = stats.negative_entropy(self.logits, self.temperature) > self.atc_threshold
        conf = stats.confidence(self.logits, self.temperature)
        return above - right, conf - right

    def knn_bank(self) -> Tensor:
        return self.adapted[torch.as_tensor(self.halves()[0])]

    def estimate_error(self) -> dict[str, float | None]:
        """The largest absolute error of each estimate on the study's shifted splits."""
        out: dict[str, float | None] = {}
        for name in ("atc", "doc", "aline"):
            errors = [abs(getattr(c, name) - c.accuracy) for c in self.checks
                      if getattr(c, name) is not None]  # fmt: skip
            out[name] = max(errors) if errors else None
        return out

    def save(self, folder: Path) -> None:
        from safeadapt.files import save_verified, write_atomic

        folder = Path(folder) / REFERENCE_DIR
        tensors = {"pretrained": self.pretrained.float().contiguous(),
                   "logits": self.logits.float().contiguous(),
                   "labels": torch.as_tensor(self.labels, dtype=torch.int64)}  # fmt: skip
        if not self.same_backbone:  # an LP export: one set of features serves as both
            tensors["adapted"] = self.adapted.float().contiguous()
        if self.members:
            tensors["member_weight"] = self.member_weight.float().contiguous()
            tensors["member_bias"] = self.member_bias.float().contiguous()
        save_verified(tensors, folder / TENSORS)
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in TENSOR_FIELDS}
        meta["label_names"] = list(self.label_names)
        meta["checks"] = [asdict(c) for c in self.checks]
        write_atomic(folder / META, json.dumps({"schema": REFERENCE_SCHEMA, **meta}, indent=1))

    @classmethod
    def load(cls, export_dir: Path) -> Reference:
        """The reference of an export, read as untrusted input: ``reference.json`` by its typed
        reader (every key known and of its type, the values in range), the tensors of the
        shapes the JSON implies, finite, labels among the classes; ``DataError`` (exit 2)
        naming the file and what is wrong otherwise."""
        from safeadapt.files import read_safetensors
        from safeadapt.readback import read_object, typed_fields
        from safeadapt.results.export import check_label_names

        folder = Path(export_dir) / REFERENCE_DIR
        if not (folder / META).is_file() or not (folder / TENSORS).is_file():
            raise CheckpointError(
                f"{export_dir} has no monitoring reference ({REFERENCE_DIR}/{META}): it was "
                "exported by a safeadapt that did not write one. Export the model again "
                "(safeadapt export STUDY --out NEW_FOLDER) and monitor the new folder."
            )
        fix = "export the model again (safeadapt export STUDY --out NEW_FOLDER)"
        path = folder / META
        meta = read_object(path, fix)
        schema = meta.pop("schema", REFERENCE_SCHEMA)
        if type(schema) is not int or not 0 <= schema <= REFERENCE_SCHEMA:
            raise DataError(f"{path}: schema {schema!r} is not one this safeadapt reads "
                            f"({REFERENCE_SCHEMA}); upgrade safeadapt or {fix}.")  # fmt: skip
        _legacy_keys(meta, str(path), fix)
        values = typed_fields(cls, meta, str(path), fix, skip=frozenset(TENSOR_FIELDS))
        view = _view(values)
        check_label_names(view.label_names, str(path))
        _check_meta(view, str(path), fix)
        size = (folder / TENSORS).stat().st_size
        if size > MAX_TENSOR_BYTES:
            raise DataError(f"{folder / TENSORS} is {size:,} bytes, more than a reference of "
                            f"{REFERENCE_SIZE:,} rows can be; {fix}.")  # fmt: skip
        try:
            # from the header, before any tensor is read
            _check_shapes(folder / TENSORS, fix, len(view.label_names))
            tensors, _ = read_safetensors(folder / TENSORS)
        except (CheckpointError, DataError):
            raise
        except Exception as err:  # truncated or not a safetensors file at all
            raise CheckpointError(
                f"{folder / TENSORS} is corrupt ({type(err).__name__}); {fix}."
            ) from None
        tensors = _check_tensors(tensors, view, folder / TENSORS, fix)
        return cls(**tensors, **values)


TENSOR_FIELDS = ("pretrained", "adapted", "logits", "labels", "member_weight", "member_bias")
MEMBERS = ("member_weight", "member_bias")
MAX_TENSOR_BYTES = 4 << 30
MAX_WIDTH = 65_536  # feature dimensions or classes of a reference tensor


# keys of references written before the monitor's signals were plug-ins, with the one value any
# safeadapt wrote for them: read and dropped
LEGACY_KEYS = {"ood_detector": "energy", "extra": {}}


def _legacy_keys(meta: dict[str, Any], where: str, fix: str) -> None:
    for key, value in LEGACY_KEYS.items():
        if key in meta and meta.pop(key) != value:
            raise DataError(f"{where}: key {key!r} can only be {value!r} (a reference written "
                            f"by an older safeadapt); {fix}.")  # fmt: skip


def _check_shapes(path: Path, fix: str, classes: int) -> None:
    """Each tensor of the reference file at most ``REFERENCE_SIZE`` rows and ``MAX_WIDTH``
    columns, read from the safetensors header: a file claiming more is refused before its
    tensors are allocated."""
    from safetensors import safe_open

    from safeadapt.monitor.members import MAX_MEMBERS

    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            shape = f.get_slice(name).get_shape()
            rows = MAX_MEMBERS * classes if name == "member_weight" else REFERENCE_SIZE
            if len(shape) > 2 or (shape and shape[0] > rows) or any(
                    d > MAX_WIDTH for d in shape[1:]):  # fmt: skip
                raise DataError(f"{path}: tensor {name!r} of shape {tuple(shape)} is larger than "
                                f"a reference ({REFERENCE_SIZE:,} rows of at most {MAX_WIDTH:,}); "
                                f"{fix}.")  # fmt: skip


def _view(values: dict[str, Any]) -> SimpleNamespace:
    """``reference.json``'s values by attribute, the fields it may leave out at their defaults."""
    defaults = {f.name: f.default_factory() if f.default_factory is not MISSING else f.default
                for f in fields(Reference)
                if f.name not in TENSOR_FIELDS and (f.default is not MISSING
                                                    or f.default_factory is not MISSING)}  # fmt: skip
    return SimpleNamespace(**{**defaults, **values})


def _check_meta(m: SimpleNamespace, where: str, fix: str) -> None:
    """The ranges of ``reference.json``'s numbers (their types are checked by the reader)."""
    bad = None
    if not m.temperature > 0:
        bad = "temperature must be above 0"
    elif not (0 <= m.accuracy <= 1 and 0 <= m.confidence_mean <= 1):
        bad = "accuracy and confidence_mean must lie in [0, 1]"
    elif not 1 <= m.ood_reference_n <= REFERENCE_SIZE:
        bad = f"ood_reference_n must be from 1 to {REFERENCE_SIZE}"
    elif not 0 <= m.ood_reference_flagged <= m.ood_reference_n:
        bad = "ood_reference_flagged must be from 0 to ood_reference_n"
    elif m.seed < 0:
        bad = "seed must be 0 or more"
    else:
        knn = [m.knn_k, m.knn_threshold, m.knn_reference_flagged]
        if any(v is None for v in knn) and any(v is not None for v in knn):
            bad = "knn_k, knn_threshold and knn_reference_flagged go together"
        elif knn[0] is not None and not (1 <= knn[0] <= REFERENCE_SIZE
                                         and 0 <= knn[2] <= m.ood_reference_n):  # fmt: skip
            bad = "knn_k or knn_reference_flagged is out of range"
    for check in m.checks:
        if not (1 <= check.n and all(0 <= getattr(check, k) <= 1
                                     for k in ("accuracy", "atc", "doc"))):  # fmt: skip
            bad = f"check {check.split!r} has a count below 1 or a rate outside [0, 1]"
    if bad:
        raise DataError(f"{where}: {bad}; {fix}.")


def _check_tensors(tensors: dict[str, Tensor], m: SimpleNamespace, path: Path,
                   fix: str) -> dict[str, Any]:  # fmt: skip
    """The reference's tensors, checked against each other and ``reference.json``: the names
    it needs (and no others), 2-D float features and logits of one row count, as many logit
    columns as label names, integer labels among them, every value finite."""
    same = m.same_backbone
    need = {"pretrained", "logits", "labels"} | (set() if same else {"adapted"})
    if set(MEMBERS) <= set(tensors):  # the ensemble is optional, both tensors or neither
        need |= set(MEMBERS)
    if set(tensors) != need:
        missing, extra = sorted(need - set(tensors)), sorted(set(tensors) - need)
        raise DataError(f"{path} holds tensors {sorted(tensors)}; a reference with "
                        f"same_backbone {str(same).lower()} holds {sorted(need)} (missing "
                        f"{missing}, unexpected {extra}); {fix}.")  # fmt: skip
    labels, logits, base = (tensors.get(k) for k in ("labels", "logits", "pretrained"))
    n, k = len(labels), len(m.label_names)
    if labels.ndim != 1 or labels.dtype != torch.int64 or not 2 <= n <= REFERENCE_SIZE:
        raise DataError(f"{path}: labels must be 1-D int64 of 2 to {REFERENCE_SIZE} rows; got "
                        f"{labels.dtype} {tuple(labels.shape)}; {fix}.")  # fmt: skip
    if n < m.ood_reference_n:
        raise DataError(f"{path}: {n} rows, fewer than ood_reference_n; {fix}.")
    if tuple(logits.shape) != (n, k):
        raise DataError(f"{path}: logits are {tuple(logits.shape)}, not ({n}, {k}) for {n} rows "
                        f"and {k} label names; {fix}.")  # fmt: skip
    if int(labels.min()) < 0 or int(labels.max()) >= k:
        raise DataError(f"{path}: labels lie outside 0..{k - 1}; {fix}.")
    for name in need - {"labels", *MEMBERS}:
        t = tensors.get(name)
        if not t.is_floating_point() or t.ndim != 2 or len(t) != n or t.shape[1] < 1:
            raise DataError(f"{path}: {name} must be a 2-D float tensor of {n} rows; got "
                            f"{t.dtype} {tuple(t.shape)}; {fix}.")  # fmt: skip
        if not bool(torch.isfinite(t).all()):
            raise DataError(f"{path}: {name} holds NaN or infinite values; {fix}.")
    adapted = tensors.get("adapted", base)
    weight, bias = (tensors.get(name) for name in MEMBERS)
    if bias is not None:
        members = len(bias)
        if not (bias.is_floating_point() and weight.is_floating_point()
                and tuple(bias.shape) == (members, k) and 2 <= members
                and tuple(weight.shape) == (members * k, adapted.shape[1])):  # fmt: skip
            raise DataError(f"{path}: the ensemble's member_weight {tuple(weight.shape)} and "
                            f"member_bias {tuple(bias.shape)} must be (K x {k}, "
                            f"{adapted.shape[1]}) and (K, {k}) with K >= 2; {fix}.")  # fmt: skip
        if not bool(torch.isfinite(weight).all() and torch.isfinite(bias).all()):
            raise DataError(f"{path}: the ensemble holds NaN or infinite values; {fix}.")
    return {"pretrained": base, "adapted": adapted, "logits": logits,
            "labels": labels.numpy(), "member_weight": weight, "member_bias": bias}  # fmt: skip


def window_outputs(
    model, pretrained, split, same_backbone: bool, batch_size: int = 64, pretrained_rows=None
):
    """``(pretrained features, adapted features, logits)`` of a split: one pass through the
    adapted model (its features, then its head), and one through the pretrained backbone unless
    the adaptation left the backbone as it was -- over the rows ``pretrained_rows`` (indices)
    only, when given: the drift test of the pretrained features is all that needs them."""
    from safeadapt.data.features import extract_features

    adapted = extract_features(model.backbone, split, batch_size, show_progress=False).features
    with torch.inference_mode():
        logits = model.head(adapted.to(model.head.weight.dtype)).float()
    if same_backbone:
        return adapted, adapted, logits
    if pretrained_rows is not None:
        split = split.subset(np.asarray(pretrained_rows, dtype=np.int64), split.name)
    base = extract_features(pretrained, split, batch_size, show_progress=False).features
    return base, adapted, logits


def same_weights(adapted, pretrained) -> bool:
    """Whether the adaptation left the backbone as it was (LP, hardened LP): the same tensors
    under the same names, so one feature pass serves both."""
    a, b = adapted.state_dict(), pretrained.state_dict()
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.equal(a[k].cpu(), b[k].cpu()) for k in a
    )


def build_reference(
    model, pretrained, task, seed: int = 0, size: int = REFERENCE_SIZE, members: int = 0
) -> Reference:
    """The reference of ``model`` (an adapted ``Classifier``) whose backbone started as
    ``pretrained``, from ``task``'s ID-validation split; the estimates are checked on the
    task's OOD-validation splits and its ID test split (labelled, never used to fit anything
    here). ``members``: the heads of the ensemble for agreement-on-the-line (0: none), fitted
    on a seeded sample of the task's training split (``monitor.members``)."""
    from safeadapt.metrics.calibration import fit_temperature
    from safeadapt.metrics.detection import knn_score

    split = task.val.sample(size, seed)
    same = same_weights(model.backbone, pretrained)
    base, adapted, logits = window_outputs(model, pretrained, split, same)
    labels = np.asarray(split.labels)
    temperature = fit_temperature(logits, torch.as_tensor(labels))
    acc = float((logits.argmax(1).numpy() == labels).mean())
    conf = stats.confidence(logits, temperature)
    threshold = stats.atc_threshold(stats.negative_entropy(logits, temperature), acc)
    # the detector: the energy score (Liu et al., NeurIPS 2020) of the adapted model's logits;
    # its threshold on a seeded half of the reference, its ID rate counted on the other half
    scores = stats.energy(logits)
    fit, count = split_halves(len(scores), seed)
    ood_threshold = float(np.quantile(scores[fit], OOD_FPR))
    # the kNN detector: bank = the fit half's adapted features, threshold on the same half with
    # each row's own distance left out, ID rate on the other half
    bank = adapted[torch.as_tensor(fit)]
    k = stats.knn_k(len(bank))
    knn_threshold = float(np.quantile(knn_score(bank, bank, k, leave_one_out=True), OOD_FPR))
    knn_flagged = int((knn_score(bank, adapted[torch.as_tensor(count)], k)
                       < knn_threshold).sum())  # fmt: skip
    weight = bias = ensemble = None
    if members:
        from safeadapt.monitor.members import TRAIN_ROWS, ensemble_predictions, fit_members

        train = task.train.sample(TRAIN_ROWS, seed)
        _, feats, _ = window_outputs(model, None, train, same_backbone=True)
        weight, bias = fit_members(feats, train.labels, task.num_classes, members, seed)
        ensemble = ensemble_predictions(weight, bias, adapted, logits)  # on the reference
    checks = []
    for name, other in {**{f"ood-val:{k}": v for k, v in task.ood_val.items()},
                        "test": task.test}.items():  # fmt: skip
        sample = other.sample(size, seed)
        _, feats, out = window_outputs(model, pretrained, sample, same_backbone=True)
        truth = float((out.argmax(1).numpy() == np.asarray(sample.labels)).mean())
        aline = None
        if ensemble is not None:
            on_split = ensemble_predictions(weight, bias, feats, out)
            aline = stats.aline_estimate(ensemble, labels, on_split).accuracy[0]
        checks.append(EstimateCheck(
            name, len(sample), truth,
            stats.atc_estimate(stats.negative_entropy(out, temperature), threshold),
            stats.doc_estimate(stats.confidence(out, temperature), float(conf.mean()), acc),
            None if aline is None else float(aline),
        ))  # fmt: skip
    return Reference(
        pretrained=base, adapted=adapted, logits=logits, labels=labels,
        label_names=tuple(task.label_names), temperature=temperature, accuracy=acc,
        confidence_mean=float(conf.mean()), atc_threshold=threshold,
        ood_threshold=ood_threshold, ood_reference_flagged=int((scores[count] < ood_threshold).sum()),
        ood_reference_n=len(count), same_backbone=same, checks=tuple(checks), seed=seed,
        knn_k=k, knn_threshold=knn_threshold, knn_reference_flagged=knn_flagged,
        member_weight=weight, member_bias=bias,
    )  # fmt: skip


def split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of ``range(n)`` cut in two: (fit half, count half)."""
    order = np.random.default_rng(seed).permutation(n)
    return order[: n // 2], order[n // 2 :]
