"""Adversarial robustness: L-inf PGD (Madry et al. 2018) and FGSM (Goodfellow et al. 2015).

Images are attacked in pixel space ([0, 1], before the model's own normalisation, which lives in
the forward pass). Text is attacked in the **token-embedding space**: the input word embeddings
of non-padding tokens are perturbed (``inputs_embeds``), with epsilon in units of the embedding
table's standard deviation. This is a white-box embedding-space attack, not a discrete text attack.

PGD: delta_0 ~ U(-eps, eps); delta <- clip(delta + alpha * sign(grad CE), -eps, eps), then the
domain projection (pixels stay in [0, 1]); alpha = 2.5 * eps / steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from safeadapt.data.task import Split
from safeadapt.model import Classifier

DEFAULT_EPS = {
    "image": (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255),
    "text": (0.0, 0.01, 0.02, 0.05, 0.1),
}


@dataclass
class _Surface:
    """What the attack perturbs: ``x0`` (B, ...), a ``mask`` of what may move, and bounds."""

    x0: Tensor
    mask: Tensor
    key: str
    rest: dict[str, Tensor]
    scale: float
    lo: float | None
    hi: float | None

    def batch(self, delta: Tensor) -> dict[str, Tensor]:
        x = self.x0 + delta * self.mask
        if self.lo is not None:
            x = x.clamp(self.lo, self.hi)
        return {**self.rest, self.key: x}


def _surface(model: Classifier, batch: dict[str, Tensor]) -> _Surface:
    if "pixels" in batch:
        x0 = batch["pixels"]
        rest = {k: v for k, v in batch.items() if k != "pixels"}
        return _Surface(x0, torch.ones_like(x0), "pixels", rest, 1.0, 0.0, 1.0)
    hf = getattr(model.backbone, "model", None)
    if hf is None or not hasattr(hf, "get_input_embeddings") or "input_ids" not in batch:
        raise NotImplementedError(
            f"backbone {model.backbone.name!r} exposes neither pixels nor input embeddings to attack"
        )
    table = hf.get_input_embeddings()
    with torch.no_grad():
        x0 = table(batch["input_ids"])  # (B, T, D)
    mask = batch["attention_mask"].unsqueeze(-1).to(x0.dtype)  # (B, T, 1): never move padding
    rest = {k: v for k, v in batch.items() if k != "input_ids"}
    return _Surface(x0, mask, "inputs_embeds", rest, float(table.weight.detach().std()), None, None)


def pgd_logits(
    model: Classifier,
    batch: dict[str, Tensor],
    labels: Tensor,
    eps: float,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Logits ``(B, K)`` on PGD adversarial inputs (``steps=1, random_start=False``: FGSM)."""
    surf = _surface(model, batch)
    eps_abs = eps * surf.scale
    if eps_abs == 0:
        with torch.no_grad():
            return model(surf.batch(torch.zeros_like(surf.x0)))
    alpha = eps_abs if steps == 1 and not random_start else 2.5 * eps_abs / steps
    if random_start:
        noise = torch.rand(surf.x0.shape, generator=generator, dtype=surf.x0.dtype)
        delta = (noise.to(surf.x0.device) * 2 - 1) * eps_abs
    else:
        delta = torch.zeros_like(surf.x0)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(surf.batch(delta)), labels)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + alpha * grad.sign()).clamp(-eps_abs, eps_abs)
    with torch.no_grad():
        return model(surf.batch(delta))


def robust_accuracy(
    model: Classifier,
    split: Split,
    eps_grid: Sequence[float],
    *,
    steps: int = 10,
    method: str = "pgd",
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy under attack at each epsilon: ``{f"{eps:g}": accuracy}``."""
    if method not in ("pgd", "fgsm"):
        raise ValueError(f"'method' must be 'pgd' or 'fgsm'; got {method!r}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    correct = np.zeros(len(eps_grid))
    for start in range(0, len(split), batch_size):
        raw = split.inputs[start : start + batch_size]
        batch = {k: v.to(device) for k, v in model.backbone.preprocess(raw).items()}
        labels = torch.from_numpy(split.labels[start : start + batch_size]).to(device)
        for i, eps in enumerate(eps_grid):
            if method == "pgd":
                logits = pgd_logits(model, batch, labels, eps, steps, True, gen)
            else:
                logits = pgd_logits(model, batch, labels, eps, 1, False)
            correct[i] += (logits.argmax(1) == labels).sum().item()
    model.train(was_training)
    return {f"{eps:g}": float(c / len(split)) for eps, c in zip(eps_grid, correct, strict=True)}
