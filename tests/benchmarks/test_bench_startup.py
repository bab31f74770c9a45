"""bench_startup on a tiny repository of its own: a row per stage with the seconds to its mark (main() entered, or
its first progress line), the stage stopped there before it writes anything, a stage that fails before its mark a
row that says why; and on the real dvc.lock, a command for every stage of the pipeline."""

import shutil
import sys
import textwrap
from pathlib import Path

import yaml

from helpers import ROOT

sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
from benchmarks import bench_startup  # noqa: E402

STAGE = '''
import argparse
from pathlib import Path

from dcgan_lab.core.progress import Progress
from dcgan_lab.core.stage import run_stage


def main(params, args):
    Path("main-{name}").write_text("entered")
    {body}
    Path("outputs-{name}").write_text("written")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    run_stage(main, parser)
'''


def fake_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "stages").mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    bodies = {"report": "pass", "train": "Progress(args.n, 'train')", "evaluate": "raise SystemExit('no features')"}
    for name, body in bodies.items():
        (root / "stages" / f"{name}.py").write_text(textwrap.dedent(STAGE).format(name=name, body=body))
    lock = {"schema": "2.0", "stages": {
        "report": {"cmd": "exec python stages/report.py --n 1"},
        "train@radford-10": {"cmd": "exec python stages/train.py --n 3"},
        "evaluate@radford-10": {"cmd": "exec python stages/evaluate.py --n 3"},
        "train@radford-11": {"cmd": "exec python stages/train.py --n 3"},  # not the study's first seed: not timed
    }}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    return root


def test_a_row_per_stage_stopped_at_its_mark_before_it_writes_anything(tmp_path):
    root = fake_repo(tmp_path)
    raw = {"ablation": {"variants": ["radford", "baseline"], "seeds": [10, 11]}}
    rows = {r.name: r for r in bench_startup.bench(raw, repeats=2, root=root, verbose=False)}
    assert list(rows) == ["start-up: train@radford-10", "start-up: evaluate@radford-10", "start-up: report"]

    train, report = rows["start-up: train@radford-10"], rows["start-up: report"]
    assert train.detail["until"] == "progress" and report.detail["until"] == "ready"
    assert 0 < train.detail["ready"]["median"] <= train.ours and train.detail["ours"]["n"] == 2
    assert train.target == "<= 5 s" and train.met == (train.ours <= 5)
    assert "to its first unit of work; imports and params" in train.note and report.note == "imports and params"
    # the train stage got into main() and stopped at its progress line; report stopped on entering main()
    assert (root / "main-train").exists() and not (root / "main-report").exists()
    assert not list(root.glob("outputs-*"))

    failed = rows["start-up: evaluate@radford-10"]
    assert failed.ours is None and failed.note.startswith("failed: stages/evaluate.py exited (1) before its "
                                                          "start-up ended") and "no features" in failed.note


def test_no_dvc_lock_is_one_row_saying_so(tmp_path):
    (row,) = bench_startup.bench({}, repeats=1, root=tmp_path, verbose=False)
    assert row.ours is None and "run `make repro` first" in row.note


def test_the_committed_dvc_lock_has_a_python_command_for_every_stage():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    commands = bench_startup.stage_commands(ROOT, raw)
    assert list(commands) == list(bench_startup.UNTIL)
    first = f"{raw['ablation']['variants'][0]}-{raw['ablation']['seeds'][0]}"
    assert commands["train"][0] == f"train@{first}" and commands["evaluate"][0] == f"evaluate@{first}"
    for name, argv in commands.values():
        assert (ROOT / argv[0]).is_file() and argv[0].startswith("stages/"), (name, argv)
