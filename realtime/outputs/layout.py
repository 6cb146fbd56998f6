"""Where each face's label and probability panel go, so that none covers another or a face.

Pure geometry on integer rectangles (x0, y0, x1, y1), no drawing. Faces are placed one after
the other (in the order given); each tries its candidate spots in turn and takes the first that
stays inside the image and clear of every face box, the HUD and what is already placed. A panel
that fits nowhere is tried in its compact size, then left out (the label still names the top
class).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Rect = tuple[int, int, int, int]
Size = tuple[int, int]
GAP = 4


@dataclass(frozen=True)
class FaceLayout:
    """Where one face's decorations go.

    Attributes:
        label: The label's rectangle.
        panel: The panel's rectangle, or None when it fits nowhere.
        compact: The panel is the compact one (fewer rows).
    """

    label: Rect
    panel: Rect | None
    compact: bool = False


def overlaps(a: Rect, b: Rect) -> bool:
    """Whether two rectangles share any area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(rect: Rect, width: int, height: int) -> bool:
    return rect[0] >= 0 and rect[1] >= 0 and rect[2] <= width and rect[3] <= height


def _clear(rect: Rect, taken: Sequence[Rect]) -> bool:
    return not any(overlaps(rect, other) for other in taken)


def _at(x: int, y: int, size: Size) -> Rect:
    return (x, y, x + size[0], y + size[1])


def label_spots(box: Rect, size: Size, width: int) -> list[Rect]:
    """Above the box, inside its top edge, below it; shifted left to stay in the image."""
    x = max(0, min(box[0], width - size[0]))
    return [_at(x, box[1] - size[1], size), _at(x, box[1], size), _at(x, box[3], size)]


def panel_spots(box: Rect, size: Size, height: int) -> list[Rect]:
    """Right of the box, left of it (top- then bottom-aligned), then below it."""
    w, h = size
    top = max(0, min(box[1], height - h))
    bottom = max(0, box[3] - h)
    right, left = box[2] + GAP, box[0] - GAP - w
    return [
        _at(right, top, size),
        _at(left, top, size),
        _at(right, bottom, size),
        _at(left, bottom, size),
        _at(box[0], box[3] + GAP, size),
    ]


def place(
    image_wh: Size,
    boxes: Sequence[Rect],
    labels: Sequence[Size],
    panels: Sequence[Sequence[Size]],
    reserved: Sequence[Rect] = (),
) -> list[FaceLayout]:
    """Lay out every face's label and panel.

    Args:
        image_wh: Image width and height.
        boxes: Face boxes, in placing order.
        labels: Each face's label size (w, h).
        panels: Each face's panel sizes to try, largest first (empty: no panel).
        reserved: Areas nothing may cover (the HUD).

    Returns:
        One FaceLayout per face. A label that has no clear spot goes inside the top of its own
        box (covering only its own face).
    """
    width, height = image_wh
    taken: list[Rect] = [*reserved, *boxes]
    out = []
    for i, box in enumerate(boxes):
        others = taken[: len(reserved) + i] + taken[len(reserved) + i + 1 :]
        spots = [s for s in label_spots(box, labels[i], width) if _inside(s, width, height)]
        label = next((s for s in spots if _clear(s, others)), label_spots(box, labels[i], width)[1])
        taken.append(label)
        panel, compact = None, False
        for k, size in enumerate(panels[i]):
            spots = [s for s in panel_spots(box, size, height) if _inside(s, width, height)]
            panel = next((s for s in spots if _clear(s, taken)), None)
            if panel is not None:
                compact = k > 0
                taken.append(panel)
                break
        out.append(FaceLayout(label, panel, compact))
    return out
