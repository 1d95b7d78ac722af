"""``hf:<hub id or local folder>``: any Hugging Face text model (AutoModel + AutoTokenizer) or
vision model (``safeadapt.backbones.hf_vision``), with ``revision`` and ``trust_remote_code``
(off unless asked: the model's own code runs only when the person running the command allows
it)."""

from __future__ import annotations

from typing import Any

from safeadapt.backbones.base import Backbone
from safeadapt.backbones.sources import Source, check_options, register_source


def _load(spec: str, options: dict[str, Any]) -> Backbone:
    from safeadapt.backbones.hf_vision import load_hf_vision
    from safeadapt.backbones.huggingface import is_vision, load_hf_text

    model_id = spec.removeprefix("hf:")
    hub = {k: options[k] for k in ("revision", "trust_remote_code") if k in options}
    loader = load_hf_vision if is_vision(model_id, **hub) else load_hf_text
    check_options(loader, options, spec, skip=("model_id",))
    return loader(model_id, **options)


def _loaders() -> tuple:
    from safeadapt.backbones.hf_vision import load_hf_vision
    from safeadapt.backbones.huggingface import load_hf_text

    return (load_hf_text, load_hf_vision)


def _runs_code(spec: str, options: dict[str, Any]) -> str | None:
    if options.get("trust_remote_code"):
        return f"backbone {spec!r} with 'trust_remote_code: true' runs the model's own Python code"
    return None


def _check(spec: str, options: dict[str, Any]) -> bool:
    return not options.get("trust_remote_code")  # a stock model is built to check it


def _base_model(spec: str) -> str | None:
    from pathlib import Path

    ident = spec.removeprefix("hf:")
    return None if Path(ident).expanduser().exists() else ident  # a local folder is no Hub id


register_source(
    Source(
        prefix="hf:",
        form="hf:<hub id or local folder>",
        load=_load,
        runs_code=_runs_code,
        check=_check,
        loaders=_loaders,
        base_model=_base_model,
    )
)
