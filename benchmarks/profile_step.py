"""profile_step: where fit's training step spends its time, op by op and convolution layer by layer.

What `bench_train.py --profile` prints: torch.profiler over steps of the train stage's own loop (fit's `Loop`), the
top ops by self time, their rollup by kind, and each convolution layer of G and D with its time, its FLOPs and their
rate against the fp32 matmul peak measured in the same run (on a CPU). Comparing two runs of it, natively and under
isa.py's AVX2 restriction, tells which ops an instruction set slows.

    python benchmarks/bench_train.py --profile --profile-variant final --profile-steps 30
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from benchmarks.bench_train import measured_matmul_peak


def profile(params, variant_name: str, images: torch.Tensor, device: torch.device, steps: int, top: int) -> str:
    """torch.profiler over `steps` of fit's own loop (`Loop`: the variant's memory format, precision, EMA and
    read-backs, as the train stage runs them) after 5 warm-up steps and as many unprofiled ones (timed, to show what
    the profiler adds): top ops by self time, a rollup by kind, and each convolution layer's time, FLOPs and FLOP/s
    (against the matmul peak measured here)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from dcgan_lab.training.distributed import World
    from dcgan_lab.training.loop import Hooks, Loop
    from dcgan_lab.training.spec import RunSpec

    t = params.train
    p = replace(params, train=replace(t, max_steps=2 * steps + 6, epochs=2 * steps + 6, eval_every=0))
    torch.manual_seed(0)
    loop = Loop(RunSpec.resolve(p, variant_name, 0, images.shape[1]), images, device, Hooks(), None, World(),
                None, None)

    def step():
        loop.train_one_step()
        if loop.read_back_due():
            loop.read_back()

    def timed_steps() -> float:
        """Seconds for `steps` steps, the last read-back and the device included."""
        started = time.perf_counter()
        for _ in range(steps):
            step()
        if loop.pending:
            loop.read_back()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    try:
        for _ in range(4):
            step()
        layers = conv_layers(loop.state.g, loop.state.d, step)  # the fifth warm-up step, counted
        bare = timed_steps()  # the same steps without the profiler, to show what it adds
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch_profile(activities=activities, record_shapes=True) as prof:
            wall = timed_steps()
    finally:
        loop.data.close()
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = prof.key_averages()
    lines = [f"torch.profiler: {steps} steps of fit's loop, variant {variant_name}, batch {t.batch_size}, "
             f"{device}, {wall / steps * 1e3:.1f} ms/step under the profiler, {bare / steps * 1e3:.1f} without it "
             "(the profiler's per-op cost is most of a small op's time here: time a change in the step, e.g. "
             "edge_layers.py --in-step)",
             events.table(sort_by=sort, row_limit=top, max_name_column_width=42),
             "self CPU time by kind: " + rollup(events)]
    if device.type == "cpu":
        lines.append(layer_table(layers, prof.key_averages(group_by_input_shape=True), steps,
                                 measured_matmul_peak(device) * 1e3))
    return "\n".join(lines)


# The convolution ops the profiler times, and where each has its (input, weight) among its input shapes. A
# transposed convolution's forward is computed inside aten::_convolution itself (its self time), a plain one's in
# aten::mkldnn_convolution; the dispatcher's self time of the other is microseconds.
CONV_OPS = {"aten::mkldnn_convolution": (0, 1), "aten::_convolution": (0, 1), "aten::convolution_backward": (1, 2)}


def conv_layers(g: torch.nn.Module, d: torch.nn.Module, step) -> dict[tuple, dict]:
    """Each convolution layer of G and D, keyed by its (input shape, weight shape) as the profiler records them
    (a weight shape alone is ambiguous: D's 1->32 conv and G's 32->1 transpose both have (32, 1, 4, 4)), with the
    FLOPs it did in `step()`, one train step: torch.utils.flop_counter's formulas for each convolution and
    convolution backward, summed by that key. (Its own per-module totals would count G's backward under D's
    first layer too: the G update's backward passes through D into G.)"""
    from torch.utils.flop_counter import FlopCounterMode

    flops: dict[tuple, int] = {}
    where = {"aten.convolution": (0, 1), "aten.convolution_backward": (1, 2)}  # (input, weight) among the args

    class ByShape(FlopCounterMode):
        def _count_flops(self, func_packet, out, args, kwargs):
            before = self.get_total_flops()
            out = super()._count_flops(func_packet, out, args, kwargs)
            if (at := where.get(str(func_packet))) is not None:
                key = (tuple(args[at[0]].shape), tuple(args[at[1]].shape))
                flops[key] = flops.get(key, 0) + self.get_total_flops() - before
            return out

    layers, handles = {}, []
    for root in (g, d):
        for name, m in root.named_modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                label = {"name": f"{type(root).__name__}.{name}",
                         "kind": f"{type(m).__name__.removeprefix('Parametrized')} {m.in_channels}->{m.out_channels}"}

                def hook(module, inputs, label=label):
                    layers[(tuple(inputs[0].shape), tuple(module.weight.shape))] = label
                handles.append(m.register_forward_pre_hook(hook))
    try:
        with ByShape(display=False):
            step()
    finally:
        for h in handles:
            h.remove()
    return {key: {**label, "flops": flops.get(key, 0)} for key, label in layers.items()}


def layer_table(layers: dict[tuple, dict], events, steps: int, peak_gflops: float) -> str:
    """Per convolution layer: its ops' self CPU time a step, its FLOPs a step and their rate, as a share of the
    peak; then the layers together, which tells how much of the step is convolution at what efficiency."""
    ms = {key: 0.0 for key in layers}
    for e in events:
        if e.key in CONV_OPS:
            i, w = CONV_OPS[e.key]
            key = (tuple(e.input_shapes[i]), tuple(e.input_shapes[w])) if len(e.input_shapes) > w else None
            if key in ms:
                ms[key] += e.self_cpu_time_total / 1e3 / steps
    rows = [f"convolution layers (self CPU time of their forward and backward ops; FLOPs by torch.utils.flop_counter"
            f" over one step; peak {peak_gflops:.0f} GFLOP/s, fp32 matmul, measured here):",
            f"  {'layer':22s} {'kind':26s} {'ms/step':>8s} {'MFLOP/step':>11s} {'GFLOP/s':>8s} {'of peak':>8s}"]

    def row(name, kind, t, f):
        rate = f / 1e6 / t if t else 0.0
        return f"  {name:22s} {kind:26s} {t:8.2f} {f / 1e6:11.1f} {rate:8.1f} {100 * rate / peak_gflops:7.0f}%"

    for key, layer in layers.items():
        rows.append(row(layer["name"], layer["kind"], ms[key], layer["flops"]))
    rows.append(row("all layers", "", sum(ms.values()), sum(layer["flops"] for layer in layers.values())))
    return "\n".join(rows)


# The rollup's kinds: an op counts in the first kind one of whose names it is (a name ending in "_" is a prefix).
KINDS = {"conv forward": ("aten::mkldnn_convolution", "aten::slow_conv_transpose2d", "aten::_convolution",
                          "aten::cudnn_convolution", "aten::cudnn_convolution_transpose"),
         "conv backward": ("aten::convolution_backward",),
         "batch norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward",
                        "aten::_batch_norm_impl_index", "aten::batch_norm"),
         "spectral norm (power iteration)": ("aten::mv", "aten::addmv_", "aten::dot", "aten::linalg_vector_norm",
                                             "aten::clamp_min"),
         "activations": ("aten::leaky_relu_", "aten::leaky_relu", "aten::leaky_relu_backward", "aten::relu_",
                         "aten::threshold_backward", "aten::tanh", "aten::tanh_backward", "aten::sigmoid",
                         "aten::sigmoid_backward"),
         # Adam on a CPU is the single-tensor loop (on CUDA fused); its mul_/add_/sqrt/div stay in "other".
         "Adam and EMA updates": ("aten::_foreach_", "aten::_fused_adam", "aten::lerp_", "aten::addcmul_",
                                  "aten::addcdiv_"),
         "copies and layout": ("aten::copy_", "aten::clone", "aten::contiguous", "aten::index", "aten::to",
                               "aten::_to_copy", "aten::empty_like", "aten::fill_", "aten::zero_")}


def rollup(events) -> str:
    """Each kind's share of the profile's self CPU time, in one line, so the bottleneck reads at a glance."""
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    shares = {k: 0.0 for k in KINDS}
    for e in events:
        for k, names in KINDS.items():
            if any(e.key == n or (n.endswith("_") and e.key.startswith(n)) for n in names):
                shares[k] += e.self_cpu_time_total
                break
    other = total - sum(shares.values())
    adam = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#"))
    return (", ".join(f"{k} {100 * v / total:.0f}%" for k, v in shares.items()) + f", other {100 * other / total:.0f}%"
            f"\nAdam's steps in all (Optimizer.step with its ops, which count in the kinds above): {100 * adam / total:.0f}%")
