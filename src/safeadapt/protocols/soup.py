"""Model soups (Wortsman et al., ICML 2022) of fine-tuned runs that share an initialisation.

Every member starts from the same model -- the pretrained backbone with its LP head -- and is
fine-tuned (LP-FT settings) with its own learning rate from ``lrs`` and its own seed
(``members_per_lr`` per rate). The greedy soup visits members by decreasing validation accuracy
and keeps each one whose addition does not lower the soup's validation accuracy; the uniform soup
averages them all. The greedy soup is returned; both are reported. Selection uses the validation
split only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from safeadapt.config import count, each, positive_number, require, setting
from safeadapt.merge import greedy_soup, uniform_soup
from safeadapt.protocols.base import FitContext, FitResult, register_protocol
from safeadapt.protocols.lp_ft import LPFTConfig, LPThenFT
from safeadapt.protocols.train_loop import finetune_in_context
from safeadapt.protocols.wise_ft import split_accuracy


@dataclass(frozen=True)
class SoupConfig(LPFTConfig):
    """A uniform model soup (Wortsman et al., ICML 2022): LP-FT members at several learning
    rates, their weights averaged (the training settings are LP-FT's)."""

    lrs: tuple[float, ...] = setting(
        (1e-5, 3e-5), "the members' learning rates", each(positive_number(), limit=100)
    )
    members_per_lr: int = setting(1, "members per learning rate (seeds)", count(1, 100))

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.tune.name != "lora" or self.tune.merge,
            "protocol 'soup-ft' averages whole models: with tune 'lora' keep 'merge: true' "
            "(tune: {lora: {merge: true}}).",
        )


@register_protocol("soup-ft")
class SoupFT(LPThenFT):
    """Greedy soup of LP-FT runs over learning rates x seeds from one shared start."""

    Config = SoupConfig

    def fit(self, ctx: FitContext) -> FitResult:
        import dataclasses

        start, _ = self.start(ctx)
        init = copy.deepcopy(start.state_dict())
        members, infos = [], []
        for lr in self.config.lrs:
            for _ in range(self.config.members_per_lr):
                start.load_state_dict(init)
                member_ctx = dataclasses.replace(ctx, seed=ctx.seed * 1000 + len(members))
                info = finetune_in_context(
                    start, member_ctx, dataclasses.replace(self.config, lr=lr)
                )
                members.append(copy.deepcopy(start.state_dict()))
                infos.append(
                    {
                        "lr": lr,
                        "seed": member_ctx.seed,
                        "val_accuracy": info["val_accuracy"],
                        "steps": info["steps"],
                    }
                )

        def score(state) -> float:
            start.load_state_dict(state)
            return split_accuracy(start, ctx.task.val, self.config.eval_batch_size)

        member_acc = [score(m) for m in members]
        uniform_acc = score(uniform_soup(members))
        soup, kept, trace = greedy_soup(members, score, order=member_acc)
        start.load_state_dict(soup)
        start.eval()
        out = {
            "members": [
                {**i, "val_accuracy_final": a} for i, a in zip(infos, member_acc, strict=True)
            ],
            "greedy_kept": kept,
            "greedy_trace": trace,
            "uniform_val_accuracy": uniform_acc,
            "val_accuracy": trace[-1],
            "trainable_parameters": sum(p.numel() for p in start.parameters()),
        }
        return FitResult(start, frozen_backbone=False, info=out)
