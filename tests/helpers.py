"""Plain helpers shared by the tests (fixtures live in conftest.py): the repository root, the user's params
shrunk to test sizes, subprocess runners, a copy of the repository to run DVC in, a tiny prepared data set,
torchrun, and ports. tests/ is on sys.path (pyproject: pythonpath), so any test or worker does `import helpers`."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def raw_params_file() -> dict:
    """The repository's params.yaml as a plain dict."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def shrink(raw: dict) -> dict:
    """The user's params with tiny widths, few steps, few samples and one seed (seed 0, so a fixed design:
    `ablation.looks` null); everything else untouched."""
    raw = copy.deepcopy(raw)
    raw["data"]["train_limit"] = 1024
    raw["model"].update(latent_dim=16, g_width=8, d_width=8)
    raw["train"].update(batch_size=32, max_steps=12, log_every=5, sample_grid=16, device="cpu", eval_every=5,
                        eval_samples=100)
    raw["classifier"].update(width=8, max_steps=40, min_accuracy=0.2)
    raw["second_classifier"].update(channels=4, features=16, batch_size=32, max_steps=40, min_accuracy=0.0)
    raw["evaluate"].update(n_samples=200, n_real=300, batch_size=100, is_splits=2)
    raw["ablation"].update(seeds=[0], looks=None)
    return raw


def keep_variants(raw: dict, names: list[str]) -> dict:
    """`raw` with only these variants defined, and the ablation training, scoring and comparing them in order."""
    raw["variants"] = {name: raw["variants"][name] for name in names}
    raw["ablation"]["variants"] = list(names)
    return raw


def with_train(params, **changes):
    """`params` with some `train.*` values changed (the dataclasses are frozen)."""
    return replace(params, train=replace(params.train, **changes))


def spec(params, variant: str, seed: int = 0, n_classes: int = 0, channels: int = 1):
    """The run description of `variant` with `seed` on images of `channels` channels (training.spec.RunSpec)."""
    from dcgan_lab.training.spec import RunSpec

    return RunSpec.resolve(params, variant, seed, channels, n_classes)


def calling(**callbacks):
    """Loop hooks whose named methods are the given functions, e.g. calling(on_checkpoint=snapshots.append)."""
    from dcgan_lab.training.loop import Hooks

    hooks = Hooks()
    for name, function in callbacks.items():
        assert callable(getattr(Hooks, name, None)), f"Hooks has no method {name}"
        setattr(hooks, name, function)
    return hooks


def random_images(n: int = 512, seed: int = 0) -> torch.Tensor:
    """n uint8 (1, 32, 32) images of noise, the same ones for the same seed."""
    return torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def prepared(tmp_path: Path, n: int = 256) -> Path:
    """A prepared data directory as the prepare stage writes it (uint8 images, labels, manifest) with a
    train split of `n` noise images, at `tmp_path/prepared`."""
    data = tmp_path / "prepared"
    data.mkdir()
    images = random_images(n)
    torch.save({"images": images, "labels": torch.zeros(n, dtype=torch.long)}, data / "train.pt")
    sha = hashlib.sha256(images.numpy().tobytes()).hexdigest()
    manifest = {"dataset": "noise", "image_size": 32, "classes": [str(i) for i in range(10)],
                "splits": {"train": {"n": n, "shape": [1, 32, 32], "dtype": "uint8", "sha256": sha}}}
    (data / "manifest.json").write_text(json.dumps(manifest))
    return data


def held_out_prepared(tmp_path: Path, n: int = 120, n_classes: int = 10) -> Path:
    """A prepared data directory with train, val and test splits of `n` noise images each (seeds 0, 1, 2), labels
    cycling over `n_classes` classes, at `tmp_path/prepared`: what validate_extractor reads."""
    data = tmp_path / "prepared"
    data.mkdir(parents=True)
    splits = {}
    for seed, split in enumerate(("train", "val", "test")):
        images, labels = random_images(n, seed), torch.arange(n) % n_classes
        torch.save({"images": images, "labels": labels}, data / f"{split}.pt")
        splits[split] = {"n": n, "shape": [1, 32, 32], "dtype": "uint8",
                         "sha256": hashlib.sha256(images.numpy().tobytes()).hexdigest()}
    manifest = {"dataset": "noise", "image_size": 32, "classes": [str(i) for i in range(n_classes)], "splits": splits}
    (data / "manifest.json").write_text(json.dumps(manifest))
    return data


def tiny_classifier(path: Path, data: Path) -> Path:
    """A width-4 digit classifier trained for a few steps on `data`'s train split, saved as the train_classifier
    stage saves it (at `path`, a classifier.pt): a real feature extractor that costs milliseconds a batch."""
    from dcgan_lab.core.config import ClassifierConfig
    from dcgan_lab.data.splits import load_split
    from dcgan_lab.evaluation.classifier import save_classifier, train_classifier

    model, metrics = train_classifier(ClassifierConfig(width=4, max_steps=4, batch_size=32), load_split(data, "train"),
                                      load_split(data, "test"), 10, torch.device("cpu"))
    save_classifier(model, path, **metrics)
    return path


def tiny_second_classifier(path: Path, data: Path) -> Path:
    """The second feature space's classifier (evaluation/second_space.py) at width 4 with 16 features, a few steps on
    `data`'s train split, saved as the train_second_classifier stage saves it (at `path`, a classifier.pt)."""
    from dcgan_lab.core.config import SecondClassifierConfig
    from dcgan_lab.data.splits import load_split
    from dcgan_lab.evaluation.second_space import save_second_classifier, train_second_classifier

    model, metrics = train_second_classifier(SecondClassifierConfig(channels=4, features=16, max_steps=4, batch_size=32),
                                             load_split(data, "train"), load_split(data, "test"), 10,
                                             torch.device("cpu"))
    save_second_classifier(model, path, **metrics)
    return path


def generator_checkpoint(path: Path, seed: int):
    """A tiny generator (latent 8, 16 px, 1 channel) saved as the train stage saves one; returns it in eval mode."""
    from dcgan_lab.gan.checkpoint import save_generator
    from dcgan_lab.gan.models import Generator, GeneratorSpec

    torch.manual_seed(seed)
    g = Generator(GeneratorSpec(latent_dim=8, width=4, image_size=16, channels=1, activation="relu",
                                batch_norm=True, output="tanh"))
    save_generator(path, g, steps=1)
    return g.eval()


class ReplayGenerator(torch.nn.Module):
    """A stand-in generator that hands back given uint8 images (N, C, S, S) as G's pixels in [-1, 1], so a test
    scores known sample sets through the real evaluation. Unconditional (n_classes 0): the images in order,
    cycling, the next ones at each call (one image: that image every time). Conditional: images[y] for label y,
    one fixed image per class whatever the noise."""

    def __init__(self, images: torch.Tensor, n_classes: int = 0):
        from dcgan_lab.gan.models import GeneratorSpec

        super().__init__()
        self.register_buffer("images", images)
        self.spec = GeneratorSpec(latent_dim=4, width=1, image_size=images.shape[-1], channels=images.shape[1],
                                  activation="relu", batch_norm=False, output="tanh", n_classes=n_classes)
        self.drawn = 0

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            y = (self.drawn + torch.arange(len(z), device=z.device)) % len(self.images)
            self.drawn += len(z)
        return self.images[y].float() / 127.5 - 1  # gan.pixels.to_uint8 turns it back into the same bytes


def run(cmd, cwd, env, check=True, timeout=900):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tree_sha256(root: Path, names=None) -> dict[str, str]:
    """{path relative to root: sha256} of every file under `root` (or under root/<name> for each of `names`),
    and "folder" for each folder: what a step that must write nothing can be compared on before and after."""
    out = {}
    for top in ([root] if names is None else [root / n for n in names]):
        for p in sorted(top.rglob("*")) if top.is_dir() else []:
            out[p.relative_to(root).as_posix()] = "folder" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def commit(dst: Path, env: dict, message: str) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(git + ["add", "-A"], dst, env)
    run(git + ["commit", "-qm", message], dst, env)
    return run(["git", "rev-parse", "HEAD"], dst, env).stdout.strip()


# The stages before training: what every e2e repository runs the same way from shrink()'s params.
PREFIX_STAGES = ("prepare", "train_classifier", "train_second_classifier", "validate_extractor", "reference")


def repo_copy(dst: Path, raw_params: dict, prefix: Path | None = None) -> dict:
    """This repository's files (as git sees them, without dvc.lock, metrics/ and benchmarks/) in a fresh
    git repo at `dst`, with `raw_params` as params.yaml. Returns the environment to run `dvc` and stages in.
    With `prefix` (conftest's `prefix_repo`: PREFIX_STAGES run once per session), its dvc.lock, DVC cache and
    the outputs that lock names come too: `dvc repro` then finds those stages up to date (they rerun if a
    module's params or code differ from the prefix's) and starts at training."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file() and f != "dvc.lock" and not f.startswith(("metrics/", "benchmarks/")):
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    (dst / "params.yaml").write_text(yaml.safe_dump(raw_params, sort_keys=False))
    if prefix is not None:
        lock = yaml.safe_load((prefix / "dvc.lock").read_text())
        outs = [o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])]
        for rel in ["dvc.lock", ".dvc/cache", *outs]:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (prefix / rel).is_dir() else shutil.copy2)(prefix / rel, dst / rel)
    # The copy runs its own code (src/ first on the path, before the editable install's): what was copied is
    # what the stages and their code hashes see, whatever happens to the working tree meanwhile.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(dst / "src")}
    for var in ("MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "DVC_ROOT", "WORLD_SIZE"):
        env.pop(var, None)
    run(["git", "init", "-q"], dst, env)
    commit(dst, env, "copy")
    return env


def build_prefix(dst: Path) -> Path:
    """A repository copy at `dst` with shrink()'s params after `dvc repro` of PREFIX_STAGES (repo_copy's prefix)."""
    env = repo_copy(dst, shrink(raw_params_file()))
    run(["dvc", "repro", *PREFIX_STAGES], dst, env)
    return dst


def env_for(tmp_path: Path) -> dict:
    """The environment of a torchrun test: helpers importable by the workers, one thread per rank on this
    2-core machine, and an MLflow store of the test's own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("WORLD_SIZE", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (it was free a moment ago and its socket is closed)."""
    return free_port()


def empty_mlflow_server(url: str) -> None:
    """Delete every registered model and every run on the tracking server at `url`, so a test that shares the
    session's server sees only what it logs itself. (Experiments stay: MLflow keeps deleted names taken.)"""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    for model in client.search_registered_models():
        client.delete_registered_model(model.name)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    for r in client.search_runs(experiments, run_view_type=ViewType.ACTIVE_ONLY, max_results=50000):
        client.delete_run(r.info.run_id)


def write_idx(path: Path, array) -> None:
    """An IDX file (LeCun's MNIST format) of a uint8 array, gzipped when the name ends in .gz."""
    import gzip
    import struct

    import numpy as np

    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def fake_idx_dir(root: Path, n_train: int = 40, n_test: int = 12) -> Path:
    """A Fashion-MNIST-like directory of IDX files (images gzipped, labels plain) holding noise."""
    import numpy as np

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))  # plain, not gzipped
    return root


def image_folder(root: Path, per_class: int = 10, classes=("cats", "dogs")) -> Path:
    """An image folder data set: one subfolder per class of noise PNGs in mixed sizes and modes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            size = (40, 30) if i % 2 else (24, 24)  # mixed sizes and modes are fitted to image_size
            img = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
            (img.convert("L") if i == 0 else img).save(root / cls / f"{i}.png")
    return root


DCGAN_LAB = Path(sys.executable).parent / "dcgan-lab"  # the console script `pip install` made


def dcgan_lab(*args, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed `dcgan-lab` command as a user does; stdout and stderr as text."""
    return subprocess.run([str(DCGAN_LAB), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def dcgan_lab_all(*commands: tuple, cwd: Path | None = None, env: dict | None = None
                  ) -> list[subprocess.CompletedProcess]:
    """Several `dcgan-lab` commands at once (each one is mostly Python importing torch), in order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: dcgan_lab(*args, cwd=cwd, env=env), commands))


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one `error: ...` line a failed command printed, after checking that it is all it printed on stderr
    and that it exited 2 without a traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def trained_model_dir(path: Path, params) -> Path:
    """A model directory as the train stage writes it (checkpoint.pt with G, D and the EMA of G; best.pt with
    the generator of the first quick eval), from real training steps of the `final` variant (spectral norm
    in D, EMA) on noise images at the shrunk params' tiny widths."""
    from dcgan_lab.gan.checkpoint import save_gan, save_generator
    from dcgan_lab.gan.models import Generator
    from dcgan_lab.training.loop import fit
    from dcgan_lab.training.run import saved_ema

    run_spec = spec(params, "final", seed=0)
    run = fit(run_spec, random_images(256), torch.device("cpu"),
              hooks=calling(on_eval=lambda step, g: float(step)))  # the first eval "scores" best
    g, d = run.g.cpu().eval(), run.d.cpu().eval()
    ema = saved_ema(run, run_spec, torch.device("cpu"))  # with standing statistics, as the train stage saves it
    save_gan(path / "checkpoint.pt", g, d, ema=ema, steps=run.step, variant="final", seed=0)
    best = Generator(g.spec)
    best.load_state_dict(run.best["state"])
    save_generator(path / "best.pt", best, steps=run.best["step"], fid_quick=run.best["score"])
    return path


# eval.json of two variants x three seeds, as `evaluate` writes it (the fields the table and the report read).
EVAL_RESULTS = {
    "baseline": {"seed0": {"fid": 8.0, "is_mean": 3.1, "kid_mean": 0.020, "extractor": "x"},
                 "seed1": {"fid": 8.6, "is_mean": 3.0, "kid_mean": 0.024, "extractor": "x"},
                 "seed2": {"fid": 7.9, "is_mean": 3.2, "kid_mean": 0.019, "extractor": "x"}},
    "final": {"seed0": {"fid": 4.8, "is_mean": 4.2, "kid_mean": 0.010, "extractor": "x"},
              "seed1": {"fid": 5.1, "is_mean": 4.1, "kid_mean": 0.011, "extractor": "x"},
              "seed2": {"fid": 4.6, "is_mean": 4.3, "kid_mean": 0.009, "extractor": "x"}},
}


def start_mlflow_server(store: Path, port: int) -> subprocess.Popen:
    """A real `mlflow server` on 127.0.0.1:port (sqlite backend and artifacts in `store`, its log appended to
    store/server.log) in its own process group, returned once it answers its health check."""
    import time
    import urllib.request

    store.mkdir(parents=True, exist_ok=True)
    with open(store / "server.log", "a") as log:  # the server keeps its own handle on it
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination",
             str(store / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=store, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read() == b"OK":
                return proc
        except OSError:
            time.sleep(0.5)
        assert proc.poll() is None, (store / "server.log").read_text()[-3000:]
    raise AssertionError(f"mlflow server not up in 180 s:\n{(store / 'server.log').read_text()[-3000:]}")


def extractor_validation(fid_rho: dict, recall_ok: bool = True, batch_diff: float = 1e-6) -> dict:
    """metrics/extractor.json's shape (validation/extractor.py), one extractor, with these checks' outcomes."""
    fid_failed = [n for n, rho in fid_rho.items() if rho != 1]
    checks = {"fid_rises": {"ok": not fid_failed, "failed": fid_failed, "spearman": fid_rho},
              "recall_falls": {"ok": recall_ok, "failed": [] if recall_ok else ["mode_collapse"],
                               "spearman": {"mode_dropping": -1.0, "mode_collapse": -1.0 if recall_ok else 0.2}},
              "batch_size_invariance": {"ok": batch_diff <= 3.7e-5, "max_abs_diff": batch_diff, "tolerance": 3.7e-5,
                                        "batch_sizes": [1, 500], "n_images": 256}}
    failed = [name for name, c in checks.items() if not c["ok"]]
    return {"extractors": {"dcgan-lab-classifier": {"floor_fid": 0.0391, "sensitivity": 14.3, "checks": checks,
                                                    "ok": not failed, "failed_checks": failed}}}

