"""GUS-T smoother (``--smooth graph``, and ``auto`` when the model has a head): METHODS.md §2.3.

Per tracked face, a causal window of its last W frames; every frame the GUS graph over the
window gives the newest frame's logits (``fer_live.smooth.gus_head``), through the model card's
decision rule; the model's own probabilities, averaged over the frames linked to the newest one,
join them as a weighted log term (``base_weight``); then a softmax and a time-constant EMA. A
new track starts cold (its first frame: the isolated head with that frame's own probabilities),
a track's window restarts after a gap longer than ``max_gap_s`` (a lost track) or an embedding
jump (cos(f_t, f_t-1) < ``reset_cos``: identity switch or shot cut), and
windows never mix tracks.

A frame's work is one compiled call over its tracks (``fer_live.smooth.gus_kernel``) on ring buffers
allocated once (``fer_live.smooth.rings``): one row of cosines per new frame, the first layer's
projection taken from the model's ``gus_proj`` output when the head is folded in (else ``f W1``
here), then the O(W^2 H) graph part for the newest node only.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from fer_live.detect.deferred import deferred
from fer_live.errors import ConfigError, ModelError
from fer_live.infer.card import ModelCard
from fer_live.infer.decision import DecisionRule
from fer_live.smooth.gus_head import GusHeadWeights, head_path_for, load_head
from fer_live.smooth.gus_kernel import NORMS, smooth_step
from fer_live.smooth.rings import TrackRings
from fer_live.smooth.window import EmaSmoother, check_window_settings
from fer_live.types import Predictions

logger = logging.getLogger(__name__)

# The folded gus_proj is checked once against f W1 here; fp16 engines differ by ~1e-3.
_FOLD_RTOL = 2e-2
# Loading the compiled kernel from numba's cache takes well under this; compiling it does not.
_COMPILE_NOTICE_S = 1.5


class GraphSmoother:
    """GUS-T: per-track graph propagation over a causal window of the track's frames.

    Args:
        head: The ``.gus.npz`` file, or None to use the one beside ``model``.
        model: The model file whose embeddings feed the head; None means the shipped default.
        card: The model's card; it names a head folded into the model (``gus_head``) and gives
            the decision rule when ``decision`` is None. Read from beside ``model`` when None.
        window: W, frames per track window (spec: 8-32; 12, with ``threshold`` and ``ema_s``
            chosen on jittered FERPlus Valid sequences, ``benchmarks/temporal.py --split valid``).
        max_gap_s: Clear a track's window after a gap longer than this (the track was lost).
        reset_cos: Clear it when cos(f_t, f_t-1) falls below this.
        decay_s: Optional time decay ``exp(-|t_i - t_j| / decay_s)`` of the edges (None = off).
        ema_s: Time constant (s) of an EMA on the output; 0 turns it off. The previous output
            keeps weight ``exp(-dt / ema_s)``, the same at any frame rate.
        base_weight: Weight of the log of the model's own probabilities, averaged over the
            newest frame and the window's frames linked to it, added to the head's logits
            (0: the head alone). The model's classifier reads a single frame better than the
            head; averaged over linked frames it keeps the head's steadiness (0.75, chosen on
            jittered FERPlus Valid sequences with ``benchmarks/temporal.py --split valid``).
        threshold: Cosine threshold of an edge in both graphs; None keeps the head's own (the
            0.5 it was trained to be evaluated with). 0.7 follows a change of face or
            expression faster: fewer frames of the old face stay connected to the new one.
        evict_after_s: Forget tracks unseen for longer than this (at most ``max_gap_s``: a
            window that old would be cleared anyway).
        decision: The decision rule applied to the head's logits as the backend applies it to
            the model's (None: the card's, else plain softmax).

    Raises:
        ConfigError: An argument out of range (the message names it).
        ModelError: The head is missing, malformed or belongs to another model.
    """

    def __init__(
        self,
        head: str | Path | None = None,
        model: str | Path | None = None,
        card: ModelCard | None = None,
        window: int = 12,
        max_gap_s: float = 0.5,
        reset_cos: float = 0.3,
        decay_s: float | None = None,
        ema_s: float = 0.1,
        base_weight: float = 0.75,
        threshold: float | None = 0.7,
        evict_after_s: float = 2.0,
        decision: DecisionRule | None = None,
    ) -> None:
        check_window_settings(
            window, max_gap_s=max_gap_s, evict_after_s=evict_after_s, ema_s=ema_s, decay_s=decay_s
        )
        if not (math.isfinite(base_weight) and 0.0 <= base_weight <= 10.0):
            raise ConfigError(f"base_weight must be in [0, 10], got {base_weight}")
        if card is None and model is not None:
            card = card_beside(Path(model))
        self.weights: GusHeadWeights = load_head(head, model, card)
        if threshold is not None:
            self.weights = replace(self.weights, threshold=float(threshold))
        self.decision = decision or (card.decision if card is not None else DecisionRule())
        self.window, self.max_gap_s, self.reset_cos = window, max_gap_s, reset_cos
        self.decay_s, self.ema_s, self.base_weight = decay_s, ema_s, float(base_weight)
        self.evict_after_s = min(evict_after_s, max_gap_s)
        self._neg_rate = -1.0 / ema_s if ema_s else 0.0
        self._fold_checked = False
        # The decision rule folds into the head's last affine map: (z W + b) / T + o.
        rule = self.decision
        self._out_w = (self.weights.w2_fc / np.float32(rule.temperature)).astype(np.float32)
        self._out_b = np.ascontiguousarray(rule.adjust(self.weights.fc_b), np.float32)
        classes = int(self.weights.fc_b.shape[0])
        dims = (self.weights.embedding_dim, self.weights.hidden_dim, classes)
        self._rings = TrackRings(window, *dims)
        self._warm_up()

    @property
    def rings(self) -> TrackRings:
        """The per-track windows (read them; the smoother writes them)."""
        return self._rings

    def reset(self) -> None:
        """Forget every track."""
        self._rings.reset()

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        """Push each track's frame into its window and return the smoothed rows.

        Raises:
            ModelError: The predictions carry no embedding, or one that does not fit the head.
        """
        rings = self._rings
        # A track unseen for max_gap_s is evicted here, so it comes back cold: no gap check below.
        rings.evict(t_s, self.evict_after_s)
        if len(preds) == 0:
            return preds
        embedding = self._embedding(preds)
        proj = self._projection(preds, embedding)
        base = self._base(preds)
        slots, _ = rings.slots_for(preds.track_id.tolist())
        probs = self._step(rings, slots, embedding, proj, base, float(t_s))
        return Predictions(preds.track_id, probs, preds.embedding, preds.projection)

    def _step(
        self, rings: TrackRings, slots: np.ndarray, embedding: np.ndarray, proj: np.ndarray,
        base: np.ndarray, t_s: float,
    ) -> np.ndarray:  # fmt: skip
        """One compiled GUS-T step over these slots' windows; their probabilities (K, C)."""
        probs = np.empty((len(slots), len(self._out_b)), np.float32)
        smooth_step(
            slots, embedding, proj, base, t_s, rings.unit, rings.proj, rings.base, rings.edges,
            rings.t_s, rings.valid, rings.newest, rings.last_t_s, rings.smoothed,
            self.weights.threshold, self.reset_cos, NORMS[self.weights.norm], self.weights.p,
            self.decay_s or 0.0, self.base_weight, self._neg_rate, self._out_w, self._out_b,
            probs,
        )  # fmt: skip
        rings.seen(t_s)
        return probs

    def _warm_up(self) -> None:
        """Compile (first run) or load (later runs) the kernel now, not on the first frame.

        Loading takes well under a second; compiling about 10 s, so then the user is told.
        """
        notice = threading.Timer(
            _COMPILE_NOTICE_S, logger.warning,
            ("compiling the GUS-T smoother (first run only, about 10 s; cached after)",),
        )  # fmt: skip
        notice.daemon = True
        notice.start()
        try:
            dim, hidden = self.weights.embedding_dim, self.weights.hidden_dim
            scratch = TrackRings(self.window, dim, hidden, len(self._out_b))
            slots, _ = scratch.slots_for([0])
            embedding, proj = np.ones((1, dim), np.float32), np.ones((1, hidden), np.float32)
            base = np.full((1, len(self._out_b)), 1.0 / len(self._out_b), np.float32)
            # numba's first call loads its typing registries, which probe for scipy's BLAS
            # (about 0.3 s of imports); the kernel calls no BLAS, so the probe gets a stand-in.
            with deferred("scipy.linalg.cython_blas"):
                self._step(scratch, slots, embedding, proj, base, 0.0)
        finally:
            notice.cancel()

    def _embedding(self, preds: Predictions) -> np.ndarray:
        if preds.embedding is None:
            raise ModelError("--smooth graph needs a model with an 'embedding' output")
        if preds.embedding.shape[1] != self.weights.embedding_dim:
            raise ModelError(
                f"GUS head expects {self.weights.embedding_dim}-d embeddings, "
                f"the model gives {preds.embedding.shape[1]}"
            )
        return np.ascontiguousarray(preds.embedding, np.float32)

    def _base(self, preds: Predictions) -> np.ndarray:
        """The model's own probability rows (K, C), as the fusion reads them."""
        base = np.ascontiguousarray(preds.probs, np.float32)
        if base.shape != (len(preds), len(self._out_b)):
            raise ModelError(
                f"GUS head has {len(self._out_b)} classes, the model gives {base.shape[1:]}"
            )
        return base

    def _projection(self, preds: Predictions, embedding: np.ndarray) -> np.ndarray:
        """The model's folded ``gus_proj`` rows (checked once against ``f W1``), else ``f W1``."""
        folded = preds.projection
        if folded is None or folded.shape[1] != self.weights.hidden_dim:
            return np.ascontiguousarray(self.weights.project(embedding), np.float32)
        if not self._fold_checked:
            expected = self.weights.project(embedding)
            scale = max(float(np.abs(expected).max()), 1e-6)
            if float(np.abs(folded - expected).max()) > _FOLD_RTOL * scale:
                raise ModelError(
                    "the model's gus_proj output does not match its GUS head's w1: "
                    "fold the head again (fer-train fold-gus)"
                )
            self._fold_checked = True
        return np.ascontiguousarray(folded, np.float32)


def card_beside(model: Path) -> ModelCard | None:
    """The verified card of a model file from its sidecar or TorchScript archive, else None.

    Only for callers without a backend: loading the model checks its card and reports a broken
    one, so an unreadable card here just means "no card".
    """
    from fer_live.infer.backends.torch_backend import read_torchscript_card
    from fer_live.infer.card import read_sidecar

    if not model.is_file():
        return None
    try:
        card = read_sidecar(model)
        if card is None and model.suffix == ".pt":
            card = read_torchscript_card(model)
    except ModelError as exc:
        logger.debug("no card for %s: %s", model, exc)
        return None
    return card


def graph_or_ema(
    model: Path | None = None, decision: DecisionRule | None = None, card: ModelCard | None = None
) -> GraphSmoother | EmaSmoother:
    """GUS-T whenever the model has a head, else EMA (``--smooth auto``, the default).

    A model has a head when a ``.gus.npz`` ships beside it (or its card names one folded into
    it) and it outputs an ``embedding``. GUS-T beats EMA on accuracy, switch latency and
    real-clip flicker (``benchmarks/results/temporal.md``).
    """
    if model is None:
        return EmaSmoother()
    model = Path(model)
    card = card or card_beside(model)
    has_embedding = card is None or "embedding" in card.outputs
    if has_embedding and head_path_for(model).is_file():
        return GraphSmoother(model=model, card=card, decision=decision)
    if card is not None and card.gus_head is not None:
        logger.warning("%s has a folded GUS head but no %s beside it: EMA smoothing",
                       model.name, head_path_for(model).name)  # fmt: skip
    return EmaSmoother()
