"""Progress without a terminal: plain lines, one about every 10%, each with the count, the time, an ETA and
what the caller hands over (losses); going back after a rollback starts the tenths again from there."""

from __future__ import annotations

import io
import re

from dcgan_lab.core.progress import Progress


def test_without_a_terminal_it_prints_a_plain_line_every_tenth():
    out = io.StringIO()  # not a terminal: no tqdm redraws, no carriage returns
    bar = Progress(200, "train final seed 0", images_per_unit=64, file=out)
    for _ in range(40):
        bar.update(5, loss_d=0.5, **{"D(x)": 0.75})
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 10
    assert [int(re.match(r"train final seed 0: (\d+)% ", line).group(1)) for line in lines] == list(range(10, 101, 10))
    assert re.fullmatch(r"train final seed 0: 50% 100/200 steps, \d+ s, ETA \d+ s, loss_d 0\.5, D\(x\) 0\.75, "
                        r"img/s \d+", lines[4]), lines[4]
    assert "ETA" not in lines[-1] and lines[-1].startswith("train final seed 0: 100% 200/200 steps")


def test_a_resumed_count_starts_at_its_step_and_set_goes_back():
    out = io.StringIO()
    bar = Progress(100, "train", initial=45, file=out)
    bar.update(5)  # 50%: the first tenth after where it started
    bar.set(20)  # a rollback to step 20
    bar.update(10)  # 30%
    assert [line.split(":")[1].split("%")[0].strip() for line in out.getvalue().splitlines()] == ["50", "30"]


def test_an_update_that_crosses_several_tenths_prints_one_line():
    out = io.StringIO()
    bar = Progress(10, "evaluate", unit="generator", file=out)
    bar.update(3)
    bar.update(1)
    bar.update(6)
    assert [line.split("%")[0].rsplit(" ", 1)[1] for line in out.getvalue().splitlines()] == ["30", "40", "100"]
