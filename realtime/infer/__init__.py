"""Infer: face crops in, class probabilities out.

Modules: ``preprocess`` (crop and normalize), ``batch`` (crops of several frames in one batch),
``card`` (the model card), ``decision`` (logits to probabilities and label), ``assets`` (the
shipped recognizer models and aliases), ``still`` (the
padded and whole-image fallbacks for stills), ``json_checks`` and ``safe_npz`` (reading
user-passed files), ``backends/`` (the backend table, ``auto`` selection and every backend),
``engine/`` (TensorRT engine building and its cache), ``gpu`` (CUDA pieces that both the GPU
backends and the engine builder use).
Imports earlier stages and the shared modules only.
"""
