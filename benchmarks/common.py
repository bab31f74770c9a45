"""What every benchmark shares: GPU peaks, repeat-and-summarise timing, the result row, machine facts, the table."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # runnable from a checkout without `pip install -e .`
    sys.path.insert(1, str(ROOT / "src"))


# Dense peaks (TFLOP/s, without sparsity) of GPUs we may meet, from the vendors' datasheets and whitepapers, for
# MFU: fp32 on CUDA cores; tf32 (what cuDNN uses for fp32 convolutions by default), bf16 and fp16 (fp32
# accumulation, as autocast runs) on tensor cores. None: no such tensor cores. A name matches as whole words,
# in this order (the more specific first: "H100 PCIe" before "H100", and "L4" is not "L40S"). --peak-tflops
# overrides.
PEAK_TFLOPS = {
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM
    "H200 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
    "A10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
    "RTX 4090": {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2},  # GeForce: fp32 accumulation at half rate
    "T4": {"fp32": 8.1, "tf32": 8.1, "bf16": None, "fp16": 65.0},  # no TF32: fp32 convolutions at the fp32 rate
}


def datasheet_peaks(gpu_name: str) -> tuple[str, dict] | None:
    """(the key it matched, its peaks) for a torch.cuda.get_device_name, or None for a GPU not in PEAK_TFLOPS."""
    for key, peaks in PEAK_TFLOPS.items():
        if re.search(rf"\b{re.escape(key)}\b", gpu_name):
            return key, peaks
    return None


def summary(values: list[float]) -> dict:
    """Median and spread of repeated measurements (min, max, and the relative half-range)."""
    values = sorted(values)
    med = statistics.median(values)
    return {
        "median": med,
        "min": values[0],
        "max": values[-1],
        "spread_pct": 100 * (values[-1] - values[0]) / 2 / med if med else float("nan"),
        "n": len(values),
        "values": values,
    }


@dataclass
class Row:
    """One line of the table. `ratio` is ours / reference in the unit given; `higher_is_better` says which
    way the target points (images/s: higher; seconds: lower)."""

    name: str
    unit: str
    ours: float | None
    reference: float | None = None
    target: str = ""
    met: bool | None = None
    ratio: float | None = None
    note: str = ""
    detail: dict = field(default_factory=dict)

    @classmethod
    def compare(cls, name: str, unit: str, ours: dict, ref: dict, target: float, higher_is_better: bool,
                note: str = "", paired: list[float] | None = None, **detail) -> "Row":
        """A row from two `summary` dicts; the ratio is of medians (the paired per-repeat ratios go in detail)."""
        ratio = ours["median"] / ref["median"]
        met = ratio >= target if higher_is_better else ratio <= target
        sign = ">=" if higher_is_better else "<="
        extra = {"ours": ours, "reference": ref}
        if paired:
            extra["paired_ratios"] = summary(paired)
        return cls(name, unit, ours["median"], ref["median"], f"{sign} {target:g}x", met, ratio, note,
                   {**extra, **detail})


def machine_facts(device: str) -> dict:
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args):
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    facts = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
    }
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if abs(x) >= 100:
        s = f"{x:,.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.3g}"
    return f"{s} {unit}".strip()


def render_table(rows: list[Row]) -> str:
    header = ["benchmark", "ours", "reference", "ratio", "target", "met?"]
    lines = []
    for r in rows:
        spread = ""
        if "ours" in r.detail and isinstance(r.detail["ours"], dict):
            spread = f" ±{r.detail['ours']['spread_pct']:.0f}%"
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        lines.append([r.name, fmt(r.ours, r.unit) + spread, fmt(r.reference, r.unit),
                      "-" if r.ratio is None else f"{r.ratio:.2f}x", r.target or "-", met])
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(l, widths)) for l in lines]
    notes = [f"  {r.name}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def write_json(path: Path, facts: dict, rows: list[Row], settings: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"machine": facts, "settings": settings, "results": [asdict(r) for r in rows]}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(blob, indent=2, default=float) + "\n")
    tmp.replace(path)


def comma_list(allowed):
    """An argparse type: a comma-separated subset of `allowed`, in the order given; an unknown name is refused with
    the allowed ones."""
    import argparse

    def parse(text: str) -> list[str]:
        names = [s.strip() for s in text.split(",") if s.strip()]
        if unknown := set(names) - set(allowed):
            raise argparse.ArgumentTypeError(f"unknown {', '.join(sorted(unknown))}; allowed: {', '.join(allowed)}")
        return names
    return parse


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


def standalone(doc: str, *add_arguments, json_default: str | None = None) -> tuple:
    """The command line every benchmark shares (--quick, --device, --threads, --params, --json) plus the
    flags each `add_arguments(parser, quick)` adds. Sets torch's threads; returns (args, params, device)."""
    import argparse

    env = os.environ.get
    quick = "--quick" in sys.argv or env_flag("BENCH_QUICK")
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=quick, help="small sizes for a smoke run")
    parser.add_argument("--device", default=env("BENCH_DEVICE", "auto"), help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", 0)),
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--json", default=json_default, help="write the rows and machine facts here (default: "
                        f"{json_default or 'only print the table'})")
    for add in add_arguments:
        add(parser, quick)
    args = parser.parse_args()

    import torch

    from dcgan_lab.core.device import resolve_device
    from dcgan_lab.core.params import load_params

    if args.threads:
        torch.set_num_threads(args.threads)
    return args, load_params(args.params), resolve_device(args.device)


def report(rows: list[Row], args, device) -> None:
    """Print the table; with --json, write it beside the machine facts."""
    print(render_table(rows))
    if args.json:
        write_json(Path(args.json), machine_facts(str(device)), rows, vars(args))
