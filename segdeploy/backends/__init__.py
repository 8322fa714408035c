"""Inference backends behind one contract (Polygraphy-style runners): ONNX Runtime, OpenVINO, torch."""
