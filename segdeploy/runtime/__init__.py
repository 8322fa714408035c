"""Runtime: Segmenter over every backend, tiling, predict on files; the backend factory."""
