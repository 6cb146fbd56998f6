"""AU pseudo-labels for ULC-AG from MediaPipe FaceLandmarker blendshapes (METHODS.md §7.5 (c)).

One pass of FaceLandmarker over a FERPlus split stores, per image in reader order, the 52 raw
blendshape scores and the inner-lip gap (in inter-ocular distances) in a cache file under
``.cache/`` keyed by split and model sha. ``au_targets`` maps them to the 17 spec AUs at training
time, so the mapping and thresholds can change without re-running MediaPipe. Images where no face
mesh is found fall back to the EMFACS prototype of their (training) emotion label (§7.5 (b)).

FERPlus images are 48 px gray crops; FaceLandmarker finds a mesh in about 95 % of them after a
cubic upscale to 192 px with a 25 % replicated border (measured on the first 300 train images:
no upscale 90 %, 192 px + 25 % border 95 %, plus a 256 px + 50 % border retry 96 %).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_live.errors import BackendUnavailable, ConfigError, ModelError
from fer_live.mesh.faces import BLENDSHAPES
from fer_live.trainer.config import SHARED_DIR
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, decode_gray
from fer_live.trainer.data.ferplus import read_ferplus

logger = logging.getLogger(__name__)

DEFAULT_LANDMARKER = SHARED_DIR / "models" / "face_landmarker.task"
# The 17 presence AUs of the OpenFace-based spec list (AU45, blink, excluded).
AU_LIST = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28)
# Spec §7.5 (c): each AU is the max of its blendshapes (left/right combined); AU25 is derived.
AU_BLENDSHAPES: dict[int, tuple[str, ...]] = {
    1: ("browInnerUp",),
    2: ("browOuterUpLeft", "browOuterUpRight"),
    4: ("browDownLeft", "browDownRight"),
    5: ("eyeWideLeft", "eyeWideRight"),
    6: ("cheekSquintLeft", "cheekSquintRight"),
    7: ("eyeSquintLeft", "eyeSquintRight"),
    9: ("noseSneerLeft", "noseSneerRight"),
    10: ("mouthUpperUpLeft", "mouthUpperUpRight"),
    12: ("mouthSmileLeft", "mouthSmileRight"),
    14: ("mouthDimpleLeft", "mouthDimpleRight"),
    15: ("mouthFrownLeft", "mouthFrownRight"),
    17: ("mouthShrugLower",),
    20: ("mouthStretchLeft", "mouthStretchRight"),
    23: ("mouthPressLeft", "mouthPressRight"),  # AU24's blendshape, the usual AU23 proxy
    26: ("jawOpen",),
    28: ("mouthRollLower", "mouthRollUpper"),
}
SUBTLE_AUS = (1, 2, 7, 10, 14, 17, 20, 23)  # binarized at 0.3, the others at 0.5
# EMFACS prototypes on the 17-AU list: AU16 (disgust) -> AU10 proxy, contempt's R12A+R14A -> 12+14.
EMFACS: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happiness": (6, 12),
    "surprise": (1, 2, 5, 26),
    "sadness": (1, 4, 15),
    "anger": (4, 5, 7, 23),
    "disgust": (9, 10, 15),
    "fear": (1, 2, 4, 5, 7, 20, 26),
    "contempt": (12, 14),
}
LIP_UPPER, LIP_LOWER, EYE_RIGHT_OUTER, EYE_LEFT_OUTER = 13, 14, 33, 263
# Upscale attempts (side px, border as a fraction of the side); the second retries misses only.
ATTEMPTS = ((192, 0.25), (256, 0.5))


def au_thresholds() -> np.ndarray:
    """Per-AU binarization thresholds (M,): 0.3 for the subtle AUs, 0.5 for the rest."""
    return np.array([0.3 if au in SUBTLE_AUS else 0.5 for au in AU_LIST], np.float32)


def blendshapes_to_au(scores: np.ndarray, lip_gap: np.ndarray) -> np.ndarray:
    """Soft AU scores (N, M) in ``AU_LIST`` order from blendshape scores.

    Args:
        scores: Blendshape scores (N, 52) in ``BLENDSHAPES`` order.
        lip_gap: Inner-lip gap (landmarks 13-14) over the inter-ocular distance (N,).

    Returns:
        float32 (N, M): the max of each AU's blendshapes; AU25 (lips part) is 1 when jawOpen > 0.1
        and mouthClose < 0.3, or the lip gap exceeds 0.05, else 0.
    """
    index = {name: i for i, name in enumerate(BLENDSHAPES)}
    out = np.zeros((scores.shape[0], len(AU_LIST)), np.float32)
    for m, au in enumerate(AU_LIST):
        if au == 25:
            apart = (scores[:, index["jawOpen"]] > 0.1) & (scores[:, index["mouthClose"]] < 0.3)
            out[:, m] = apart | (lip_gap > 0.05)
        else:
            out[:, m] = scores[:, [index[n] for n in AU_BLENDSHAPES[au]]].max(axis=1)
    return out


def prototype_matrix(classes: tuple[str, ...]) -> np.ndarray:
    """EMFACS prototype AUs per class, float32 (C, M) of 0/1 (unknown class names raise).

    Raises:
        ConfigError: A class has no EMFACS prototype.
    """
    missing = [c for c in classes if c not in EMFACS]
    if missing:
        raise ConfigError(f"no EMFACS AU prototype for classes {missing}")
    return np.array([[au in EMFACS[c] for au in AU_LIST] for c in classes], np.float32)


@dataclass(frozen=True)
class AuCache:
    """Raw FaceLandmarker signals of one split, in reader order.

    Attributes:
        names: Image file names (N,).
        labels: The reader's majority labels (N,) (to check the cache matches the split).
        blendshapes: float32 (N, 52), zeros where no mesh was found.
        lip_gap: float32 (N,) inner-lip gap over inter-ocular distance.
        found: bool (N,) a face mesh was found.
        model_sha: sha256 of the landmarker bundle.
    """

    names: np.ndarray
    labels: np.ndarray
    blendshapes: np.ndarray
    lip_gap: np.ndarray
    found: np.ndarray
    model_sha: str

    def coverage(self) -> float:
        """Fraction of images with a face mesh."""
        return float(self.found.mean()) if len(self.found) else 0.0


def au_targets(
    cache: AuCache,
    labels: np.ndarray,
    classes: tuple[str, ...],
    soft: bool = False,
    prior_mix: float = 0.0,
) -> np.ndarray:
    """AU targets (N, M) for the first N cached images, with the EMFACS fallback.

    Args:
        cache: The split's cache (at least N rows).
        labels: The training emotion labels (N,) used by the fallback (the noisy ones in a noisy
            run: the clean labels must not leak in).
        classes: Class names in label order.
        soft: Raw AU scores as soft targets instead of thresholded 0/1.
        prior_mix: Weight w of the prototype mixed into detector targets, (1 - w) z + w proto.

    Returns:
        float32 (N, M) in [0, 1].
    """
    n = len(labels)
    au = blendshapes_to_au(cache.blendshapes[:n], cache.lip_gap[:n])
    if not soft:
        au = (au >= au_thresholds()).astype(np.float32)
    proto = prototype_matrix(classes)[labels]
    mixed = (1.0 - prior_mix) * au + prior_mix * proto
    return np.where(cache.found[:n, None], mixed, proto).astype(np.float32)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def default_cache_path(
    split: str, model_path: Path = DEFAULT_LANDMARKER, cache_dir: Path = DEFAULT_CACHE_DIR,
    limit: int = 0,
) -> Path:  # fmt: skip
    """``<cache_dir>/au-<split>-<model sha12>[-first<limit>].npz``.

    Raises:
        ModelError: The landmarker bundle is missing.
    """
    if not Path(model_path).is_file():
        raise ModelError(f"FaceLandmarker bundle not found: {model_path}")
    suffix = f"-first{limit}" if limit else ""
    return Path(cache_dir) / f"au-{split}-{file_sha256(model_path)[:12]}{suffix}.npz"


def load_au_cache(path: Path) -> AuCache:
    """Read a cache written by ``build_au_cache``.

    Raises:
        ConfigError: The file is missing (the message names the command that builds it).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"AU pseudo-label cache not found: {path}; build it with "
            "`fer-train methods au-labels --split train` (or pass au_cache=PATH)"
        )
    with np.load(path, allow_pickle=False) as data:
        return AuCache(
            data["names"], data["labels"], data["blendshapes"], data["lip_gap"],
            data["found"].astype(bool), str(data["model_sha"]),
        )  # fmt: skip


class BlendshapeReader:
    """FaceLandmarker over small gray face crops: 52 blendshape scores and the lip gap.

    Args:
        model_path: The ``face_landmarker.task`` bundle.
        min_confidence: Minimum face detection and presence confidence.

    Raises:
        BackendUnavailable: mediapipe is not installed.
        ModelError: The bundle is missing.
    """

    def __init__(self, model_path: Path = DEFAULT_LANDMARKER, min_confidence: float = 0.3):
        try:
            import mediapipe
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError:
            raise BackendUnavailable("mediapipe is not installed: pip install mediapipe") from None
        if not Path(model_path).is_file():
            raise ModelError(f"FaceLandmarker bundle not found: {model_path}")
        from fer_live.capture.native_log import quiet_native_stderr

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=Path(model_path).read_bytes()),
            running_mode=vision.RunningMode.IMAGE, num_faces=1, output_face_blendshapes=True,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
        )  # fmt: skip
        self._mp = mediapipe
        with quiet_native_stderr():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def read(self, gray: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Blendshapes (52,) and lip gap of a gray uint8 face crop (H, W), or None (no mesh)."""
        for side, border in ATTEMPTS:
            result = self._detect(gray, side, border)
            if result is not None:
                return result
        return None

    def _detect(
        self, gray: np.ndarray, side: int, border: float
    ) -> tuple[np.ndarray, float] | None:
        big = cv2.resize(gray, (side, side), interpolation=cv2.INTER_CUBIC)
        pad = int(border * side)
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        rgb = np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))
        result = self._landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB,
                                                        data=rgb))  # fmt: skip
        if not result.face_blendshapes:
            return None
        categories = result.face_blendshapes[0]
        if tuple(c.category_name for c in categories) != BLENDSHAPES:
            raise ModelError("the landmarker's blendshape names differ from BLENDSHAPES")
        scores = np.array([c.score for c in categories], np.float32)
        pts = np.array([(p.x, p.y) for p in result.face_landmarks[0]], np.float32)
        ocular = np.linalg.norm(pts[EYE_RIGHT_OUTER] - pts[EYE_LEFT_OUTER])
        gap = np.linalg.norm(pts[LIP_UPPER] - pts[LIP_LOWER]) / max(float(ocular), 1e-6)
        return scores, float(gap)

    def close(self) -> None:
        """Release the mediapipe graph."""
        self._landmarker.close()

    def __enter__(self) -> BlendshapeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_au_cache(
    data_root: Path,
    split: str = "train",
    model_path: Path = DEFAULT_LANDMARKER,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    limit: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Run FaceLandmarker over a FERPlus split (reader order) and write the AU cache.

    Args:
        data_root: FERPlus root.
        split: ``train``, ``valid`` or ``test``.
        model_path: The landmarker bundle (its sha keys the cache).
        cache_dir: Folder of the cache file.
        limit: Only the first ``limit`` images (0 = the whole split; tests and probes).
        progress: Called as ``progress(done, total)`` after each image.

    Returns:
        The cache file (see ``default_cache_path``).
    """
    items = read_ferplus(Path(data_root), split)
    paths = items.paths[:limit] if limit else items.paths
    n = len(paths)
    blend = np.zeros((n, len(BLENDSHAPES)), np.float32)
    gap = np.zeros(n, np.float32)
    found = np.zeros(n, bool)
    with BlendshapeReader(model_path) as reader:
        for i, path in enumerate(paths):
            out = reader.read(decode_gray(path))
            if out is not None:
                blend[i], gap[i], found[i] = out[0], out[1], True
            if progress is not None:
                progress(i + 1, n)
    target = default_cache_path(split, model_path, cache_dir, limit)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, names=np.array([p.name for p in paths]), labels=items.labels[:n], blendshapes=blend,
        lip_gap=gap, found=found, model_sha=np.array(file_sha256(model_path)),
    )  # fmt: skip
    tmp.replace(target)
    logger.info("AU cache %s: %d images, face mesh in %.1f %%", target, n, 100 * found.mean())
    return target
