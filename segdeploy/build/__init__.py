"""ONNX -> TensorRT engine (strongly typed: precision comes from the ONNX) with a sidecar manifest."""
