"""Stage `train@<variant>-<seed>`: the step, the loop around it, and the run that writes its outputs,
with what they need (resumable state, divergence guard, EMA, speed switches, batches, torchrun/DDP)."""
