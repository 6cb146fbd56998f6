"""Seed paper 000 as runner methods: MRE (mid-level mixing branch) and end-to-end GUS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from trainer.methods.gus import GusHead, GusNet
from trainer.methods.mre import MreConfig, MreNet, mre_loss
from trainer.methods.protocol import Batch, Method, Targets
from trainer.models.base import FerNet


class MreMethod(Method):
    """MRE: high head + mixed mid branch; inference H, M or H+M (spec §1)."""

    name: ClassVar[str] = "mre"
    eval_modes: ClassVar[tuple[str, ...]] = ("H", "M", "H+M")
    options_type: ClassVar[type] = MreConfig

    def wrap(self, base: FerNet) -> nn.Module:
        return MreNet(base, self.card.num_classes, self.options, self.card.channels)

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [
            *model.mid_conv.parameters(),
            *model.mid_fc.parameters(),
            *model.net.fc.parameters(),
        ]

    def start_epoch(self, model: nn.Module, epoch: int, epochs: int) -> None:
        model.detach_mid = epoch < self.options.detach_fraction * epochs

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        high, mids, _ = model(batch.x, batch.labels)
        return mre_loss(high, mids, batch.soft, self.options.weight, self.criterion)

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        model.infer_mode = mode
        return model(x)


@dataclass(frozen=True)
class GusOptions:
    """GUS head settings (spec §2); the defaults are the paper's."""

    hidden: int = 512
    norm: str = "mlgcn"
    p: float = 0.5
    eval_threshold: float = 0.5


class GusMethod(Method):
    """End-to-end GUS: the linear head replaced by two GUS layers over the batch graph.

    ``isolated`` is the deployable per-image mode; ``batch`` is transductive (labelled so).
    """

    name: ClassVar[str] = "gus"
    eval_modes: ClassVar[tuple[str, ...]] = ("isolated", "batch")
    options_type: ClassVar[type] = GusOptions

    def wrap(self, base: FerNet) -> nn.Module:
        opt = self.options
        head = GusHead(
            base.num_features, self.card.num_classes, opt.hidden, opt.norm, opt.p,
            eval_threshold=opt.eval_threshold,
        )  # fmt: skip
        return GusNet(base, head)

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return list(model.head.parameters())

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        model.mode = mode
        return model(x)
