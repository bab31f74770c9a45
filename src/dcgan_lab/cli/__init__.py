"""`dcgan-lab`: sample, interpolate and inspect trained generators, and read the ablation's verdicts."""
