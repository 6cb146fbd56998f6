"""benchmarks/product_path.py's arithmetic: accuracies on the faces found, and over all."""

from __future__ import annotations

import numpy as np

from tests.bench_scripts import bench_script


def test_accuracies_count_a_missed_face_as_wrong_only_for_the_pipeline() -> None:
    labels = np.array([0, 1, 1, 0])
    eye = np.eye(2)
    direct = eye[[0, 1, 0, 0]]  # 3 of 4 right; 2 of the 3 found
    product = eye[[0, 1, 1, 1]]  # the found faces: 3 of 3 right
    pipeline = eye[[0, 1, 1, 0]].copy()
    pipeline[3] = np.nan  # the product found no face in the last picture
    with bench_script("product_path") as script:
        acc = script.accuracies(direct, product, pipeline, labels)
    assert acc["found_pct"] == 75.0
    assert acc["direct_all"] == 75.0 and acc["direct_found"] == 66.67
    assert acc["product_crops_found"] == 100.0 and acc["pipeline_found"] == 100.0
    assert acc["pipeline_all"] == 75.0
