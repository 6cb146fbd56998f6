"""Regenerate the accuracy table: ``python benchmarks/accuracy_report.py [model.onnx ...]``.

Writes ``benchmarks/results/accuracy.md`` and ``accuracy.json`` (our exported models beside the
published FERPlus / FER2013 numbers). With no arguments it reports ``weights/fer_default.onnx``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fer_live.trainer.report import write_report

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", type=Path, help="exported .onnx files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    md, js = write_report(args.models, args.out)
    logging.info("wrote %s and %s", md, js)


if __name__ == "__main__":
    main()
