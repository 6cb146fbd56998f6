"""How should the still fallbacks weigh their face evidence? Every signal once, then each rule.

For each picture, the boxes the still fallback (``fer_live.infer.still.StillFallback``) would
weigh: the detector's hits, else the padded copy's, else (a roughly square picture) the whole
picture; and for each box every piece of evidence, asked regardless of the others: the detector's
score, the second look, the landmarker and the face probe's probability. A rule then says which
boxes are kept; a picture with one has a face. Pictures: FERPlus tight crops (upscaled as
``benchmarks/folder_check.py`` writes them; ``--split valid`` to choose) and held-out non-face
pictures (``benchmarks/nonface_check.py``'s generator with seeds other than the benchmark's 0 and
the probe's training and threshold seeds).

    python benchmarks/still_rules.py [--split valid] [--seeds 201 202 203]

Writes ``benchmarks/results/still_rules_<split>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from fer_live.detect.mediapipe import fit_for_search
from fer_live.detect.table import open_detector
from fer_live.infer.assets import default_model_path
from fer_live.infer.card import ModelCard, resolve_card
from fer_live.infer.still import (
    DETECT_TRUSTED,
    MIN_FACE_PX,
    PAD,
    PROBE_VETO,
    PROBE_WEAK_HIT,
    SECOND_LOOK_MIN,
    SQUARE_ASPECT,
    LandmarkerEvidence,
    ProbeEvidence,
    StillFallback,
    around_box,
    bordered,
    still_probe,
    whole_image_box,
)
from fer_live.trainer.config import DEFAULT_DATA_ROOT
from fer_live.types import FaceBoxes, Frame

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folder_check import make_folder  # noqa: E402
from nonface_check import make_nonfaces  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


@dataclass(frozen=True)
class Candidate:
    """A box the fallback weighs, with all its evidence."""

    kind: str  # detector, padded or whole_image
    score: float
    second: bool
    landmarker: bool
    probe: float


Rule = Callable[[Candidate], bool]


def candidates(stage: StillFallback, probe: ProbeEvidence, image: np.ndarray) -> list[Candidate]:
    """The boxes ``stage`` weighs for one picture (the same order of retries), all evidence."""
    frame = Frame(0, None, fit_for_search(image))
    h, w = frame.image.shape[:2]
    boxes = stage._search(frame)
    kind = "detector"
    if not len(boxes):
        if min(h, w) < MIN_FACE_PX:
            return []
        pad = int(round(PAD * min(max(h, w), 2.0 * min(h, w))))
        found = stage._search(replace(frame, image=bordered(frame.image, pad)))
        boxes = FaceBoxes(found.xyxy - np.float32(pad), found.score, source="padded")
        kind = "padded"
    if len(boxes):
        border = {"detector": PAD, "padded": 0.5}[kind]
        return [_weigh(stage, probe, frame, kind, box, float(s), border)
                for box, s in zip(boxes.xyxy, boxes.score, strict=True)]  # fmt: skip
    if not SQUARE_ASPECT[0] <= w / h <= SQUARE_ASPECT[1]:
        return []
    box = whole_image_box(w, h, stage.framing)[0]
    lm = stage.evidence.confirms(frame.image)
    return [Candidate("whole_image", 0.0, False, lm, probe.face_prob(frame.image, box))]


def _weigh(stage: StillFallback, probe: ProbeEvidence, frame: Frame, kind: str, box: np.ndarray,
           score: float, border: float) -> Candidate:  # fmt: skip
    if score >= DETECT_TRUSTED:  # kept whatever the rest says
        return Candidate(kind, score, True, True, 1.0)
    second = stage._seen_again(frame, box, border)
    lm = stage.evidence.confirms(around_box(frame.image, box))
    return Candidate(kind, score, second, lm, probe.face_prob(frame.image, box))


def rules(t: float) -> dict[str, Rule]:
    """The rules weighed at probe threshold ``t``: a weak box is kept when ..."""

    def sure(c: Candidate) -> bool:
        return c.score >= DETECT_TRUSTED or c.second

    def whole(c: Candidate) -> bool:
        return c.kind == "whole_image"

    return {
        "landmarker": lambda c: sure(c) or c.landmarker,
        "landmarker_or_probe": lambda c: sure(c) or c.landmarker or c.probe >= t,
        "probe_for_whole_only": lambda c: sure(c) or c.landmarker or (whole(c) and c.probe >= t),
        "landmarker_and_probe_for_whole": lambda c: (
            sure(c) or (c.landmarker and c.probe >= t if whole(c) else c.landmarker)
        ),
        "probe_whole_landmarker_weak": lambda c: (
            sure(c) or (c.probe >= t if whole(c) else c.landmarker)
        ),
        "probe_only": lambda c: sure(c) or c.probe >= t,
        # fer_live.infer.still with a probe: the probe alone for the whole picture; a weak hit
        # kept at PROBE_WEAK_HIT, by a second look the probe does not veto, or the landmarker
        "shipped": lambda c: (
            c.score >= DETECT_TRUSTED
            or (
                c.probe >= t
                if whole(c)
                else c.probe >= PROBE_WEAK_HIT
                or (c.second and c.probe >= PROBE_VETO)
                or c.landmarker
            )
        ),
    }


def has_face(found: list[Candidate], rule: Rule) -> bool:
    return any(rule(c) for c in found)


def weigh_folder(stage: StillFallback, probe: ProbeEvidence, paths: list[Path], what: str) -> list:
    return [candidates(stage, probe, cv2.imread(str(p), cv2.IMREAD_COLOR))
            for p in track(paths, description=what)]  # fmt: skip


def weigh_all(stack: ExitStack, probe: ProbeEvidence, card: ModelCard, folder: Path,
              names: list[str], seeds: list[int]) -> tuple[list, list[Path], list]:  # fmt: skip
    """Every candidate of the face folder's pictures and of the generated non-face pictures."""
    faces = open_detector("short", min_score=0.55, max_faces=32, stills=True)
    stack.callback(faces.close)
    second = open_detector("short", min_score=SECOND_LOOK_MIN, max_faces=32, stills=False)
    stack.callback(second.close)
    stack.callback(probe.close)
    landmarker = stack.enter_context(LandmarkerEvidence())
    tmp = stack.enter_context(tempfile.TemporaryDirectory())
    stage = StillFallback(faces, card.crop, landmarker, second=second)
    face_found = weigh_folder(stage, probe, [folder / n for n in names], "faces")
    nonface_paths = []
    for seed in seeds:
        made = Path(tmp) / str(seed)
        nonface_paths += [made / n for n in make_nonfaces(made, seed)]
    return face_found, nonface_paths, weigh_folder(stage, probe, nonface_paths, "non-faces")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--seeds", type=int, nargs="+", default=[201, 202, 203])
    parser.add_argument("--folder", type=Path, default=None, help="where the crops are written")
    parser.add_argument("--dump", type=Path, default=None, help="every candidate, as JSON")
    args = parser.parse_args()
    model = default_model_path()
    card = resolve_card(model, None, "sidecar")
    probe = still_probe(model, card)
    assert probe is not None, f"{model.name} has no face probe"
    folder = args.folder or ROOT / ".cache" / f"tight_ferplus_{args.split}"
    names, _, _ = make_folder(DEFAULT_DATA_ROOT, folder, args.split)
    with ExitStack() as stack:
        found = weigh_all(stack, probe, card, folder, names, args.seeds)
    face_found, nonface_paths, nonface_found = found
    table = []
    for t in THRESHOLDS:
        for name, rule in rules(t).items():
            rates = [np.mean([has_face(f, rule) for f in fs]) for fs in (face_found, nonface_found)]
            table.append({"rule": name, "threshold": t, "face_rate": round(float(rates[0]), 4),
                          "nonface_rate": round(float(rates[1]), 4)})  # fmt: skip
    result = {
        "split": args.split, "images": len(names), "nonface_seeds": args.seeds,
        "nonface_pictures": len(nonface_paths), "rules": table,
        "faces": {n: [asdict(c) for c in f] for n, f in zip(names, face_found, strict=True)
                  if not has_face(f, rules(0.5)["landmarker"])},
        "nonfaces": {str(p.relative_to(p.parents[1])): [asdict(c) for c in f]
                     for p, f in zip(nonface_paths, nonface_found, strict=True) if f},
    }  # fmt: skip
    if args.dump is not None:
        args.dump.write_text(json.dumps({
            "faces": [[asdict(c) for c in f] for f in face_found],
            "nonfaces": [[asdict(c) for c in f] for f in nonface_found],
        }))  # fmt: skip
    out = RESULTS / f"still_rules_{args.split}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for row in table:
        print(row)


if __name__ == "__main__":
    main()
