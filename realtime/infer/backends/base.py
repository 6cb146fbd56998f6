"""The inference backend contract: one ``infer`` around a tiny ``_infer_impl`` hook.

The base class checks the input once (dtype, shape, contiguity), short-circuits empty batches and
checks the output width against the model card, so each concrete backend only loads a model and
runs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType

import numpy as np

from fer_live.errors import ModelError
from fer_live.infer.card import ModelCard
from fer_live.types import ModelOutput


class InferenceBackend(ABC):
    """A loaded model that turns normalized face crops into logits (and an embedding).

    Attributes:
        card: The model card read from the model file.
        name: Backend name, e.g. ``"onnx"``.
        device: Where the model runs, e.g. ``"cpu"`` or ``"cuda"``.
    """

    card: ModelCard
    name: str = ""
    device: str = "cpu"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The per-sample input shape (C, S, S)."""
        return (self.card.channels, self.card.input_size, self.card.input_size)

    def infer(self, pixels: np.ndarray) -> ModelOutput:
        """Run the model on a batch.

        Args:
            pixels: float32 (B, C, S, S), C-contiguous, normalized by ``to_model_input``.

        Returns:
            Logits (B, num_classes) and the embedding (B, D) when the model has one.

        Raises:
            ValueError: The input has the wrong dtype, shape or memory layout.
            ModelError: The model returned logits of the wrong width.
        """
        self._check_input(pixels)
        if pixels.shape[0] == 0:
            return self._empty_output()
        output = self._infer_impl(pixels)
        self._check_output(output, pixels.shape[0])
        return output

    def _check_input(self, pixels: np.ndarray) -> None:
        if not isinstance(pixels, np.ndarray) or pixels.dtype != np.float32:
            got = getattr(pixels, "dtype", type(pixels).__name__)
            raise ValueError(f"{self.name} backend needs float32 pixels, got {got}")
        want = (None, *self.input_shape)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{self.name} backend needs pixels of shape (B, {', '.join(map(str, want[1:]))}),"
                f" got {tuple(pixels.shape)}"
            )
        if not pixels.flags["C_CONTIGUOUS"]:
            raise ValueError(f"{self.name} backend needs C-contiguous pixels")

    def _empty_output(self) -> ModelOutput:
        card = self.card
        arrays = [np.zeros((0, card.num_classes), np.float32)]
        if card.embedding_dim is not None:
            arrays.append(np.zeros((0, card.embedding_dim), np.float32))
        if card.gus_head is not None:
            arrays.append(np.zeros((0, card.gus_head.dim), np.float32))
        return self._named_output(arrays)

    def _named_output(self, arrays: Sequence[np.ndarray]) -> ModelOutput:
        """The model's outputs, given in the card's ``outputs`` order, as a ModelOutput.

        Outputs the card does not name (or the model does not return) are None; every array is
        float32 with one row per sample.
        """
        logits = np.asarray(arrays[0], np.float32)
        if logits.ndim != 2:
            raise ModelError(f"{self.card.name} logits must be (B, C), got shape {logits.shape}")
        named = dict(zip(self.card.outputs, arrays, strict=False))
        extra = {
            field: _rows(named[name], logits.shape[0])
            for field, name in (("embedding", "embedding"), ("projection", "gus_proj"))
            if name in named
        }
        return ModelOutput(logits, **extra)

    def _check_output(self, output: ModelOutput, batch: int) -> None:
        width = output.logits.shape[1]
        if width != self.card.num_classes:
            raise ModelError(
                f"model returned {width} logits but its card has {self.card.num_classes} labels"
            )
        if output.logits.shape[0] != batch:
            raise ModelError(f"model returned {output.logits.shape[0]} rows for a batch of {batch}")

    @abstractmethod
    def _infer_impl(self, pixels: np.ndarray) -> ModelOutput:
        """Run the loaded model on a checked, non-empty batch."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to free by default
        """Free what this backend created."""

    def __enter__(self) -> InferenceBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.card.name!r}, device={self.device!r})"


def _rows(array: np.ndarray, rows: int) -> np.ndarray:
    """float32 (rows, F): a (B, F, 1, 1) embedding flattened per sample."""
    array = np.asarray(array, np.float32)
    return array if array.ndim == 2 else array.reshape(rows, -1)
