"""Data: dataset readers, the one preprocessing path, synthetic scenes. Torch-free."""
