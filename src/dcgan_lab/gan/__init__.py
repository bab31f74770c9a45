"""The GAN itself: one DCGAN whose variants come from flags (models), its losses, DiffAugment, pixel
conversion, sampling, and checkpoints that rebuild it alone. Used by train, evaluate and report."""
