"""Training: augmentation, losses and the trainer behind ``segdeploy train``. Imports torch."""
