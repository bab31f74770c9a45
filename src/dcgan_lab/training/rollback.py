"""`train.on_divergence: rollback`: back to the last checkpoint with both learning rates halved.

The loop keeps the snapshot of its last checkpoint here (the state at the start until the first
one). When the divergence guard fires, `restore` either re-raises (rollback off, or
`train.max_rollbacks` used up) or puts the state back to that snapshot; what the rollbacks
themselves changed (the learning-rate scale, their count, the training time) carries over.
"""

from __future__ import annotations

from .guard import Diverged
from .speed import Precision
from .state import TrainState


class Rollback:
    def __init__(self, enabled: bool, max_rollbacks: int, snapshot: dict):
        self.enabled, self.max_rollbacks = enabled, max_rollbacks
        self.last_good = snapshot  # a TrainState.state_dict() plus the precision's scalers

    def keep(self, snapshot: dict) -> None:
        self.last_good = snapshot

    def restore(self, exc: Diverged, state: TrainState, precision: Precision, seconds: float) -> None:
        """Raise `exc` if no rollback is left; else restore the last good state, lrs halved once more.
        `seconds` is the run's training time so far, kept across the restore."""
        if not self.enabled or state.rollbacks >= self.max_rollbacks:
            raise exc
        scale, rollbacks = state.lr_scale / 2, state.rollbacks + 1
        state.load_state_dict(self.last_good)
        precision.load_state_dict(self.last_good["precision"])
        state.set_lr_scale(scale)
        state.rollbacks, state.seconds = rollbacks, seconds
