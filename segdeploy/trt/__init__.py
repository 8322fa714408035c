"""ONNX -> TensorRT: engine builder, optimisation profiles and the TensorRT backend.

The network is strongly typed: precision comes from the ONNX.
"""
