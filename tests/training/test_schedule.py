"""The loop's schedule and clock."""

from __future__ import annotations

import time

from dcgan_lab.training.schedule import Clock, Schedule


def test_schedule_names_the_steps_that_end_epochs_evaluate_and_checkpoint():
    s = Schedule(steps_per_epoch=16, total=40, log_every=5, eval_every=10, checkpoint_every=0)
    assert [k for k in range(1, 41) if s.epoch_end(k)] == [16, 32, 40]
    assert [k for k in range(1, 41) if s.evaluates(k)] == [10, 20, 30, 40]
    assert [k for k in range(1, 41) if s.checkpoints(k)] == [40]  # 0: at the end only
    off = Schedule(16, 40, 5, eval_every=0, checkpoint_every=12)
    assert not any(off.evaluates(k) for k in range(1, 41))
    assert [k for k in range(1, 41) if off.checkpoints(k)] == [12, 24, 36, 40]


def test_clock_times_epochs_and_banks_training_time():
    class Run:
        seconds = 10.0

    clock, run = Clock(), Run()
    clock.epoch_steps = 4
    time.sleep(0.05)
    timing = clock.epoch(images_per_step=32)
    assert timing["epoch_seconds"] >= 0.05 and timing["images_per_sec"] == 4 * 32 / timing["epoch_seconds"]
    assert clock.epoch_steps == 0
    clock.bank(run)
    assert 10.05 <= run.seconds < 11
    before = run.seconds
    clock.bank(run)
    assert run.seconds - before < 0.05  # banking restarts the mark
