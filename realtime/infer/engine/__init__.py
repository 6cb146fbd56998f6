"""Building TensorRT engines: load the library, compile ONNX through a cache, the engine file.

A layer below ``fer_live.infer.backends``: the TensorRT backend compiles and reads engines through
this package, and nothing here imports a backend at module level.
"""
