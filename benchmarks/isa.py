"""The train benchmark under an instruction-set restriction, so one machine measures the path other CPUs take.

Users' CPUs differ: on one without AVX-512 (AVX2 and FMA only) PyTorch's own kernels (ATen) and oneDNN's
convolutions take their AVX2 code, about 4x slower per step than on ours. The three variables below make an AVX-512
CPU take that code too; they are read when torch loads, so the restricted benchmark runs in a child process
(bench_train.py with --json), and `probe` asks that child's oneDNN (ONEDNN_VERBOSE) and ATen which ISA they took:
a restriction that did not take effect is a row saying so, never figures labelled AVX2. The MFU row of the child
divides by the fp32 matmul peak it measured itself, under the same restriction.

    python benchmarks/isa.py            # the probe, natively and restricted: which ISA each path takes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, Row

AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
LABEL = "AVX2-restricted"
# One stride-2 4x4 convolution, as the DCGAN's: oneDNN prints the ISA it dispatches for and the kernel it ran.
PROBE = ("import torch; torch.nn.Conv2d(3, 4, 4, 2, 1)(torch.randn(2, 3, 8, 8)); "
         "print('aten_capability', torch.backends.cpu.get_cpu_capability())")


def probe(env: dict[str, str]) -> dict:
    """Which ISA a torch process started with `env` (over os.environ) takes: oneDNN's dispatch ISA (its
    `info,cpu,isa:` line), the convolution kernel it ran (e.g. `jit:avx2`, `brg:avx512_core`) and ATen's CPU
    capability (e.g. AVX2, AVX512)."""
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env, "ONEDNN_VERBOSE": "1"},
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = {"onednn_isa": None, "conv_kernel": None, "aten_capability": None}
    for line in out.splitlines():
        parts = line.split(",")
        if line.startswith("onednn_verbose") and "info" in parts and any(p.startswith("isa:") for p in parts):
            found["onednn_isa"] = next(p for p in parts if p.startswith("isa:")).removeprefix("isa:")
        elif line.startswith("onednn_verbose") and "exec" in parts and "convolution" in parts:
            found["conv_kernel"] = parts[parts.index("convolution") + 1]
        elif line.startswith("aten_capability"):
            found["aten_capability"] = line.split()[1]
    return found


def restricted(found: dict) -> bool:
    """Whether a probe shows every path on AVX2 code: oneDNN's ISA and kernel and ATen's capability."""
    isa, kernel, aten = (found.get(k) or "" for k in ("onednn_isa", "conv_kernel", "aten_capability"))
    return "AVX2" in isa and "avx512" not in kernel.lower() and aten.upper() == "AVX2"


def restricted_train_rows(bench_args: list[str], env: dict[str, str] = AVX2_ENV) -> list[Row]:
    """bench_train.py run with `bench_args` in a child process under `env`: its rows, each name suffixed with
    the restriction, after a row that says what the probe saw. A restriction that does not take effect (an old
    oneDNN, a CPU without AVX2) is that row alone, marked not met."""
    found = probe(env)
    note = (f"{' '.join(f'{k}={v}' for k, v in env.items())}: oneDNN ISA {found['onednn_isa']}, its convolution "
            f"kernel {found['conv_kernel']}, ATen {found['aten_capability']}")
    check = Row(f"{LABEL}: the restriction took effect", "", "yes" if restricted(found) else "no",
                met=restricted(found), note=note, detail=found)
    if not check.met:
        return [check]
    with tempfile.TemporaryDirectory(prefix="bench-isa-") as tmp:
        out = Path(tmp) / "rows.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), *bench_args, "--json", str(out)],
                       env={**os.environ, **env}, check=True, timeout=3600)
        results = json.loads(out.read_text())["results"]
    names = {f.name for f in fields(Row)}
    rows = [Row(**{k: v for k, v in r.items() if k in names}) for r in results]
    for row in rows:
        row.name = f"{row.name} [{LABEL}]"
    return [check, *rows]


if __name__ == "__main__":
    for label, env in (("native", {}), (LABEL, AVX2_ENV)):
        print(label, probe(env))
