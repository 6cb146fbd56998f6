"""Expression events on ``temporal.py``'s sequences: onset delay, recall, precision, false events.

The sequences are those of ``benchmarks/temporal.py``: FERPlus images of one split, each as 30
jittered frames at 30 fps (crop shift and scale, brightness, noise, blur), through the model and
GUS-T (the product's default smoother), then through the event detector
(``fer_live.events``).

- **Switch sequences** (image A for 30 frames, then image B with another label; a pair the model
  gets right unsmoothed, as in ``temporal.py``): the switch at frame 30 is a *true expression
  change*. It is *found* when B is not neutral and an event of B has its onset within
  ``--window`` frames from frame 30 (onset in [30, 30 + window]), or when B is neutral and an
  event of A has its offset in [29, 29 + window]. *Onset delay*: onset - 30 of the found B events.
  The *true stretches* are A's frames 0-29 and B's frames 30-59 (each when not neutral); an
  event *matches* a stretch when it has its label and its onset lies within ``window`` frames
  from the stretch's start; each stretch matches one event at most. Recall = changes found /
  changes; precision = events that match a stretch / events.
- **No-change sequences** (one image for 30 frames): every event that matches no stretch (the
  image's own label from frame 0, if not neutral) is a *false event*; reported per 100
  sequences, over the images the model gets right unsmoothed (``correct``, as the switch pairs
  are chosen) and over all images (the model's own errors then count too).

``--split valid --sweep`` scores a grid of settings and picks the defaults (``choose``: among
settings with recall and precision >= 0.9 and <= 1 false event per 100 correct sequences, the
most changes found, then the fewest false events, then the shortest onset delay);
without ``--sweep`` the product's defaults (``EventSettings()``) are scored once (the Test
figures). Run: ``python benchmarks/events.py [--split valid --sweep] [--model ...] [--name
events]``; writes ``benchmarks/results/<name>.{json,md}`` (and ``.png`` with ``--sweep``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import pickle
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

# Run as a script, so this folder is on sys.path and its modules import by name.
from temporal import FPS, REPO, SEQ, Frames, infer, load_images, switch_pairs
from threadpoolctl import threadpool_limits

from fer_live.events.detect import Event, EventSettings, events_of_series
from fer_live.smooth.gus_t import GraphSmoother
from fer_live.trainer.data.jitter import jittered
from fer_live.types import Predictions

logger = logging.getLogger("events")
NEUTRAL = "neutral"


def smoothed(smoother: GraphSmoother, frames: Frames) -> np.ndarray:
    """One track's frames (T, ...) through GUS-T at FPS: the smoothed probabilities (T, C)."""
    out = np.empty_like(frames.probs)
    for t in range(len(out)):
        proj = None if frames.projs is None else frames.projs[t : t + 1]
        row = slice(t, t + 1)
        preds = Predictions(np.array([0]), frames.probs[row], frames.embs[row], proj)
        out[t] = smoother.smooth(preds, t / FPS).probs[0]
    return out


def detect(probs: np.ndarray, labels: Sequence[str], settings: EventSettings) -> list[Event]:
    frames = np.arange(len(probs))
    return events_of_series(0, frames, frames / FPS, probs, labels, settings)


def match_flags(
    events: Sequence[Event], stretches: Sequence[tuple[str, int]], window: int
) -> list[bool]:
    """Which events match a true stretch (label, start frame), each stretch at most once."""
    free, flags = list(stretches), []
    for event in events:
        hit = next(
            (s for s in free if event.label == s[0] and s[1] <= event.onset_frame <= s[1] + window),
            None,
        )
        if hit is not None:
            free.remove(hit)
        flags.append(hit is not None)
    return flags


def matched(events: Sequence[Event], stretches: Sequence[tuple[str, int]], window: int) -> int:
    """How many events match a true stretch."""
    return sum(match_flags(events, stretches, window))


def score_switches(
    sequences: Sequence[tuple[np.ndarray, str, str]],
    labels: Sequence[str],
    settings: EventSettings,
    window: int,
) -> dict[str, float]:
    """Recall, precision and onset delay over switch sequences (probs, A's label, B's label)."""
    found, delays, matches, total = 0, [], 0, 0
    for probs, a, b in sequences:
        events = detect(probs, labels, settings)
        total += len(events)
        stretches = [(name, start) for name, start in ((a, 0), (b, SEQ)) if name != NEUTRAL]
        matches += matched(events, stretches, window)
        if b != NEUTRAL:
            onsets = [e.onset_frame - SEQ for e in events if e.label == b]
            hit = [d for d in onsets if 0 <= d <= window]
            if hit:
                found += 1
                delays.append(hit[0])
        elif any(e.label == a and SEQ - 1 <= e.offset_frame <= SEQ - 1 + window for e in events):
            found += 1
    return {
        "changes": len(sequences),
        "recall": found / max(len(sequences), 1),
        "precision": matches / max(total, 1),
        "events": total,
        "onset_delay_frames": float(np.mean(delays)) if delays else float("nan"),
        "onset_delay_p90_frames": float(np.percentile(delays, 90)) if delays else float("nan"),
    }


def score_still(
    sequences: Sequence[tuple[np.ndarray, str]],
    labels: Sequence[str],
    settings: EventSettings,
    window: int,
) -> dict[str, float]:
    """False events per 100 no-change sequences (probs, label), and how many of the non-neutral
    ones got their event.

    The false events are also split by cause: ``late`` (the right label, but its onset more
    than ``window`` frames in: the stream was unsure first), ``stream`` (the label the smoothed
    stream shows on most frames, not the image's: the model's error, which the detector
    reports faithfully) and ``other`` (a split event or a class the stream shows only briefly:
    the detector's own).
    """
    false, got, expressive = 0, 0, 0
    causes = dict.fromkeys(("late", "stream", "other"), 0)
    for probs, label in sequences:
        events = detect(probs, labels, settings)
        stretches = [] if label == NEUTRAL else [(label, 0)]
        flags = match_flags(events, stretches, window)
        false += flags.count(False)
        got += sum(flags)
        expressive += bool(stretches)
        shown = labels[int(np.bincount(probs.argmax(1), minlength=len(labels)).argmax())]
        for event, hit in zip(events, flags, strict=True):
            if hit:
                continue
            if event.label == label and not any(flags):
                causes["late"] += 1
            elif event.label != label and event.label == shown:
                causes["stream"] += 1
            else:
                causes["other"] += 1
    per_100 = 100.0 / max(len(sequences), 1)
    return {
        "sequences": len(sequences),
        "false_per_100": false * per_100,
        **{f"false_{cause}_per_100": n * per_100 for cause, n in causes.items()},
        "stretch_recall": got / max(expressive, 1),
    }


def score(data: dict, labels: Sequence[str], settings: EventSettings, window: int) -> dict:
    return {
        "settings": asdict(settings),
        "switch": score_switches(data["switch"], labels, settings, window),
        "still_correct": score_still(data["still_correct"], labels, settings, window),
        "still_all": score_still(data["still_all"], labels, settings, window),
    }


def passes(row: dict) -> bool:
    s = row["switch"]
    return (
        s["recall"] >= 0.9 and s["precision"] >= 0.9 and row["still_correct"]["false_per_100"] <= 1
    )


def grid() -> list[EventSettings]:
    rows = []
    enters, exits = (0.4, 0.5, 0.6, 0.7, 0.8), (0.3, 0.4, 0.5, 0.6)
    for enter, exit_p, min_s, gap_s in itertools.product(
        enters, exits, (0.1, 0.2, 0.3, 0.4, 0.5), (0.1, 0.2, 0.3)
    ):
        if exit_p <= enter:
            rows.append(EventSettings(enter, exit_p, min_s, gap_s))
    return rows


def choose(rows: Sequence[dict]) -> dict | None:
    """Among the settings that pass: the most changes found, the fewest false events, the
    shortest onset delay; then the widest hysteresis band and the longest gap, which make an
    event harder to split on real clips (these sequences have no dips to test that)."""
    ok = [r for r in rows if passes(r)]
    if not ok:
        return None
    return min(
        ok,
        key=lambda r: (
            -r["switch"]["recall"],
            r["still_correct"]["false_per_100"],
            r["switch"]["onset_delay_frames"],
            r["settings"]["exit"] - r["settings"]["enter"],
            -r["settings"]["gap_s"],
        ),
    )


def sequences(args: argparse.Namespace) -> tuple[dict, tuple[str, ...], str]:
    """The smoothed switch and no-change sequences of ``args.split``."""
    rng = np.random.default_rng(args.seed)
    images, label_ids = load_images(args.split, args.images, rng)
    frames = infer(args.model, jittered(images, SEQ, rng), rule=True)
    seqs = frames.per_sequence(len(label_ids))
    pairs = switch_pairs(seqs.probs, label_ids, args.pairs, rng)
    from fer_live.infer.card import read_sidecar

    card = read_sidecar(args.model)
    assert card is not None
    labels = tuple(card.labels)
    majority = [np.bincount(p.argmax(1), minlength=len(labels)).argmax() for p in seqs.probs]
    smoother = lambda: GraphSmoother(model=args.model)  # noqa: E731 (fresh per sequence)
    still_all = [(smoothed(smoother(), seqs.pick(i)), labels[y]) for i, y in enumerate(label_ids)]
    data = {
        "switch": [
            (smoothed(smoother(), seqs.pick(a, b)), labels[label_ids[a]], labels[label_ids[b]])
            for a, b in pairs
        ],
        "still_all": still_all,
        "still_correct": [
            s for s, m, y in zip(still_all, majority, label_ids, strict=True) if m == y
        ],
    }
    setup = (
        f"model {args.model.name}, GUS-T smoothing, FERPlus {args.split}: {args.images} images x "
        f"{SEQ} jittered frames at {FPS:.0f} fps ({len(data['still_correct'])} the model gets "
        f"right unsmoothed), {len(pairs)} switch pairs, seed {args.seed}, match window "
        f"{args.window} frames"
    )
    return data, labels, setup


def _row_md(row: dict) -> str:
    s, st, still = row["settings"], row["switch"], row["still_correct"]
    return (
        f"| {s['enter']} | {s['exit']} | {s['min_s']} | {s['gap_s']} | {st['recall']:.3f} "
        f"| {st['precision']:.3f} | {st['onset_delay_frames']:.2f} "
        f"| {st['onset_delay_p90_frames']:.0f} | {still['false_per_100']:.2f} "
        f"| {row['still_all']['false_per_100']:.2f} | {_causes(row['still_all'])} "
        f"| {still['stretch_recall']:.3f} |"
    )


def _causes(still: dict) -> str:
    return " / ".join(f"{still[f'false_{c}_per_100']:.2f}" for c in ("late", "stream", "other"))


HEADER = (
    "| enter | exit | min_s | gap_s | recall | precision | onset delay (frames) | p90 "
    "| false / 100 (correct) | false / 100 (all) | all: late / stream / other "
    "| still stretches found |\n" + "|---" * 12 + "|"
)


def markdown(results: dict) -> str:
    lines = [f"# Expression events\n\n{results['setup']}\n", HEADER]
    lines += [_row_md(row) for row in results["rows"]]
    if results.get("chosen"):
        lines += ["\nChosen (first on recall, then false events, then delay):\n", HEADER,
                  _row_md(results["chosen"])]  # fmt: skip
    return "\n".join(lines) + "\n"


def _along(rows: Sequence[dict], fixed: dict, free: str) -> list[dict]:
    """The rows that differ from ``fixed`` in ``free`` only, in its order."""
    keep = [r for r in rows if all(r["settings"][k] == v for k, v in fixed.items() if k != free)]
    return sorted(keep, key=lambda r: r["settings"][free])


def plot(rows: Sequence[dict], chosen: dict, path: Path) -> Path:
    """Recall, precision and onset delay against ``enter``, and false events against ``min_s``,
    the chosen settings' others fixed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixed = {k: v for k, v in chosen["settings"].items() if k != "neutral"}
    by_enter, by_min = _along(rows, fixed, "enter"), _along(rows, fixed, "min_s")
    enter = [r["settings"]["enter"] for r in by_enter]
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.6))
    ax.plot(enter, [r["switch"]["recall"] for r in by_enter], "o-", label="recall")
    ax.plot(enter, [r["switch"]["precision"] for r in by_enter], "s-", label="precision")
    ax.axhline(0.9, color="grey", linestyle=":")
    ax.set_xlabel("enter")
    ax.legend()
    ax.set_title(f"exit {fixed['exit']}, min_s {fixed['min_s']}, gap_s {fixed['gap_s']}")
    ax2.plot(enter, [r["switch"]["onset_delay_frames"] for r in by_enter], "o-")
    ax2.set_xlabel("enter")
    ax2.set_ylabel("mean onset delay (frames)")
    min_s = [r["settings"]["min_s"] for r in by_min]
    for key, name in (("still_correct", "model-correct"), ("still_all", "all")):
        ax3.plot(min_s, [r[key]["false_per_100"] for r in by_min], "o-", label=name)
    ax3.axhline(1.0, color="grey", linestyle=":")
    ax3.set_xlabel("min_s (s)")
    ax3.set_ylabel("false events / 100 no-change seqs")
    ax3.legend()
    ax3.set_title(f"enter {fixed['enter']}, exit {fixed['exit']}, gap_s {fixed['gap_s']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "weights" / "fer_default.onnx")
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--images", type=int, default=300, help="no-change sequences")
    parser.add_argument("--pairs", type=int, default=300, help="switch sequences")
    parser.add_argument("--window", type=int, default=10, help="match window (frames)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="score the grid and choose")
    parser.add_argument("--cache", type=Path, help="keep the smoothed sequences in this pickle")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default="events", help="result files <out>/<name>.{json,md}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    threadpool_limits(limits=1, user_api="blas")  # as fer-live runs the smoother
    if args.cache is not None and args.cache.is_file():
        data, labels, setup = pickle.loads(args.cache.read_bytes())
    else:
        data, labels, setup = sequences(args)
        if args.cache is not None:
            args.cache.write_bytes(pickle.dumps((data, labels, setup)))
    settings = grid() if args.sweep else [EventSettings()]
    rows = [score(data, labels, s, args.window) for s in settings]
    results = {"setup": setup, "rows": rows, "chosen": choose(rows) if args.sweep else None}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(results))
    if args.sweep and results["chosen"]:
        plot(rows, results["chosen"], args.out / f"{args.name}.png")
    logger.info("%s", markdown({**results, "rows": rows[:1] if args.sweep else rows}))
    return results


if __name__ == "__main__":
    main()
