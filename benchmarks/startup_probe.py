"""The child process of bench_startup: runs one stage script as DVC would, and says when its start-up ends.

    python benchmarks/startup_probe.py --until progress stages/train.py --variant radford --seed 10 ...

Two marks, each one line on stdout, `STARTUP <mark> <seconds since this process started>`:
- `ready`: the stage's main() is entered: its imports are done and params.yaml is read and validated;
- `progress`: the stage's first progress line is created, right before its first unit of work (a training step, a
  generator's samples, a level of the extractor's validation).

The process exits at the mark `--until` names (os._exit: nothing after it runs, so the stage writes none of its
outputs). Nothing of the stage is changed but these two functions, wrapped: core.stage.run_stage's call of main,
and core.progress.Progress.__init__.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
MARKS = ("ready", "progress")


def since_start() -> float:
    """Seconds since this process started: from the kernel's start time where /proc has it (so the interpreter's
    own start counts), else since this module was loaded."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - STARTED


def mark(name: str, until: str) -> None:
    print(f"STARTUP {name} {since_start():.3f}", flush=True)
    if name == until:
        sys.stdout.flush()
        os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", choices=MARKS, required=True, help="the mark at which to exit")
    parser.add_argument("script", help="the stage script, e.g. stages/train.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    probe = parser.parse_args()

    from dcgan_lab.core import progress, stage

    run_stage, progress_init = stage.run_stage, progress.Progress.__init__

    def probed_run_stage(main, parser):
        def probed_main(params, args):
            mark("ready", probe.until)
            return main(params, args)
        return run_stage(probed_main, parser)

    def probed_progress_init(self, *args, **kwargs):
        mark("progress", probe.until)
        progress_init(self, *args, **kwargs)

    stage.run_stage = probed_run_stage
    progress.Progress.__init__ = probed_progress_init
    sys.argv = [probe.script, *probe.args]
    sys.path.insert(0, str(Path(probe.script).resolve().parent))
    runpy.run_path(probe.script, run_name="__main__")
    print("STARTUP end", flush=True)  # the stage ran to its end without reaching the mark


if __name__ == "__main__":
    main()
