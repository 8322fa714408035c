"""Export stage: checkpoint -> verified ONNX. ``onnx_export`` imports torch; ``config`` does not."""
