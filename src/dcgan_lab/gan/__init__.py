"""The GAN itself: one DCGAN whose variants come from flags (models), its losses, DiffAugment, pixel
conversion, sampling, checkpoints that rebuild it alone, and its architecture as tables and figures. Used by
train, evaluate, report and the `dcgan-lab` command."""
