"""The Backbone interface: a pretrained model that maps a batch to features.

A backbone owns its preprocessing (tokenizer / image transform) and names a set of intermediate
layers whose pooled outputs can be read (for LDIFS, feature distortion, probes)::

    batch = backbone.preprocess(raw_inputs)          # dict of CPU tensors
    feats = backbone(batch)                          # (B, D)
    feats, taps = backbone.forward_layers(batch, backbone.default_layers)  # taps[name]: (B, D_l)
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import torch
from torch import Tensor, nn

from safeadapt.config import count, flag
from safeadapt.errors import InvalidConfig

Batch = Mapping[str, Tensor]


def pool(t: Tensor, mask: Tensor | None = None) -> Tensor:
    """Pool a layer output to ``(B, D)``: mean over space ``(B, C, H, W)`` or tokens ``(B, T, D)``."""
    if t.ndim == 4:  # (B, C, H, W)
        return t.mean(dim=(2, 3))
    if t.ndim == 3:  # (B, T, D)
        if mask is None:
            return t.mean(dim=1)
        m = mask.unsqueeze(-1).to(t.dtype)  # (B, T, 1)
        return (t * m).sum(1) / m.sum(1).clamp_min(1e-9)
    if t.ndim == 2:
        return t
    raise ValueError(f"cannot pool a layer output of shape {tuple(t.shape)}")


def as_tokens(t: Tensor) -> Tensor:
    """A layer output as positions x features ``(B, P, D)``: ``(B, C, H, W)`` -> ``(B, H*W, C)``,
    ``(B, T, D)`` unchanged, ``(B, D)`` -> ``(B, 1, D)``. Unpooled taps for LDIFS."""
    if t.ndim == 4:
        return t.flatten(2).transpose(1, 2)
    if t.ndim == 3:
        return t
    if t.ndim == 2:
        return t.unsqueeze(1)
    raise ValueError(f"cannot read a layer output of shape {tuple(t.shape)} as positions")


PRECISIONS = ("fp32", "bf16")

# A loader's options declare their range as Annotated[type, rule] (safeadapt.config): checked
# before the loader runs (sources.check_options) and shown by `safeadapt list <backbone>`.
MAX_TEXT_LENGTH = 65_536  # tokens per text (a model's own position limit is checked on load)
MAX_IMAGE_SIDE = 1_024  # pixels a side, as the study's task.image_size
MaxLength = Annotated[int, count(1, MAX_TEXT_LENGTH)]
ImageSize = Annotated[int, count(8, MAX_IMAGE_SIDE)]
OptionalImageSize = Annotated[int | None, count(8, MAX_IMAGE_SIDE)]
Flag = Annotated[bool, flag()]


ATTENTION_PAIRS = (("query", "value"), ("q_proj", "v_proj"), ("q", "v"))


def attention_targets(module: nn.Module) -> list[str] | None:
    """A transformer's query and value projections (the LoRA paper's choice), by the names
    Hugging Face models give them; None when the module has no such pair."""
    names = {n.split(".")[-1] for n, _ in module.named_modules()}
    return next((list(pair) for pair in ATTENTION_PAIRS if set(pair) <= names), None)


def generic_lora_targets(module: nn.Module) -> list[str]:
    """LoRA targets of a module nothing declares them for: attention projections if it has
    them, else its 1x1 convolutions (a CNN's pointwise layers), else every Linear."""
    found = attention_targets(module)
    if found:
        return found
    pointwise = sorted(
        {
            n.split(".")[-1]
            for n, m in module.named_modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1
        }
    )
    if pointwise:
        return pointwise
    linear = sorted(
        {n.split(".")[-1] for n, m in module.named_modules() if isinstance(m, nn.Linear)}
    )
    if linear:
        return linear
    raise InvalidConfig(
        "tuning 'lora': no Linear or 1x1 Conv2d module to adapt; give 'tune.lora.targets'."
    )


class Backbone(nn.Module, ABC):
    """A feature extractor with its own preprocessing and named intermediate layers."""

    #: registry / display name, e.g. "minilm"
    name: str = "backbone"
    #: "text" or "image"
    modality: str = "text"
    #: precision of feature extraction and evaluation passes: "fp32", or "bf16" (opt-in, autocast;
    #: training stays fp32). Part of the fingerprint, so bf16 features never mix with fp32 ones.
    precision: str = "fp32"

    def set_precision(self, precision: str) -> Backbone:
        if precision not in PRECISIONS:
            raise InvalidConfig(
                f"backbone 'precision' must be one of {PRECISIONS}; got {precision!r}."
            )
        self.precision = precision
        return self

    @contextmanager
    def inference_precision(self) -> Iterator[None]:
        """The block (an extraction or evaluation pass) in the backbone's precision."""
        if self.precision == "fp32":
            yield
            return
        device = self.device.type
        if device == "cuda" and not torch.cuda.is_bf16_supported():
            raise InvalidConfig(
                "backbone 'precision: bf16' needs a GPU with bfloat16 support (Ampere or newer); "
                "this one has none: use precision 'fp32'."
            )
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            yield

    @property
    @abstractmethod
    def feature_dim(self) -> int: ...

    @property
    @abstractmethod
    def layer_names(self) -> tuple[str, ...]:
        """Every intermediate layer whose pooled output ``forward_layers`` can return."""

    @property
    def default_layers(self) -> tuple[str, ...]:
        """A few evenly spaced layers (LDIFS / distortion taps): input of the first block + outputs."""
        names = self.layer_names
        if len(names) <= 5:
            return names
        step = (len(names) - 1) / 4
        return tuple(names[round(i * step)] for i in range(5))

    def lora_targets(self) -> list[str]:
        """The module names (suffixes) LoRA adapts when a study gives none. A transformer's own
        class names its attention projections; any other module: :func:`generic_lora_targets`."""
        return generic_lora_targets(self)

    def input_lengths(self, inputs: Sequence[Any]) -> list[int] | None:
        """How long each input is for batching by length (texts: characters), or ``None``."""
        if isinstance(inputs, list | tuple) and inputs and isinstance(inputs[0], str):
            return [len(t) for t in inputs]
        return None

    @abstractmethod
    def preprocess(self, inputs: Sequence[Any]) -> dict[str, Tensor]:
        """Raw inputs (texts, or a uint8 image array) -> a batch of CPU tensors."""

    @abstractmethod
    def forward_layers(
        self, batch: Batch, layers: Sequence[str], pooled: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Final features ``(B, D)`` and the outputs of ``layers``: pooled, each ``(B, D_l)``, or
        with ``pooled=False`` per position, each ``(B, P, D_l)`` (tokens, including padding --
        ``batch["attention_mask"]`` marks the real ones -- or spatial positions)."""

    @contextmanager
    def stochastic_off(self) -> Iterator[int]:
        """Within the block, dropout and stochastic depth drop nothing, whatever the training
        flags (probabilities set to 0, restored on exit); yields how many modules were quieted.
        Setting the probability rather than the mode also reaches code that reads ``dropout.p``
        directly (Hugging Face's SDPA attention) and keeps BatchNorm's mode untouched."""
        saved: list[tuple[nn.Module, str, Any]] = []
        for name, m in self.named_modules():
            if "lora_dropout" in name:  # LoRA's own dropout is an explicit setting: keep it
                continue
            if isinstance(m, nn.modules.dropout._DropoutNd):
                saved.append((m, "p", m.p))
            elif type(m).__name__ == "DropPath" and hasattr(m, "drop_prob"):
                saved.append((m, "drop_prob", m.drop_prob))
            elif type(m).__name__ == "StochasticDepth" and hasattr(m, "p"):
                saved.append((m, "p", m.p))
        saved += self._extra_stochastic()
        try:
            for m, attr, _ in saved:
                setattr(m, attr, 0.0)
            yield len(saved)
        finally:
            for m, attr, value in saved:
                setattr(m, attr, value)

    def _extra_stochastic(self) -> list[tuple[Any, str, Any]]:
        """Model-specific stochastic settings ``(owner, attribute, value)`` beyond the standard
        modules (subclasses override)."""
        return []

    def forward(self, batch: Batch) -> Tensor:
        return self.forward_layers(batch, ())[0]

    def config(self) -> dict[str, Any]:
        """Settings that change the features (cache key, saved with checkpoints)."""
        return {"name": self.name}

    def check_layers(self, layers: Sequence[str]) -> None:
        unknown = [n for n in layers if n not in self.layer_names]
        if unknown:
            raise InvalidConfig(
                f"Backbone {self.name!r} has no layer {unknown[0]!r}; known layers: "
                f"{', '.join(self.layer_names)}."
            )

    def fingerprint(self) -> str:
        """Hash of the weights and the feature-changing config: equal iff features are equal."""
        settings = dict(self.config())
        if self.precision != "fp32":  # fp32 fingerprints stay what they were
            settings["precision"] = self.precision
        h = hashlib.sha256(repr(sorted(settings.items())).encode())
        for key, value in self.state_dict().items():
            h.update(key.encode())
            h.update(
                value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()
            )  # no copy
        return h.hexdigest()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@contextmanager
def capture_outputs(module: nn.Module, names: Sequence[str]) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of the named submodules of ``module`` during a forward pass."""
    found = dict(module.named_modules())
    store: dict[str, Tensor] = {}
    handles = []
    for name in names:

        def hook(_m, _inp, out, name=name):
            store[name] = out[0] if isinstance(out, tuple) else out

        handles.append(found[name].register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
