"""Quantization: FP16, calibrated INT8 (QDQ) for TensorRT and CPUs, dynamic INT8, accuracy gates."""
