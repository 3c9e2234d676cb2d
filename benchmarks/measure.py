"""How :mod:`benchmarks.run` measures: peak memory, random input batches, this machine's limit
(a reference convolution), op-level profiles, and interleaved timing rounds.
"""

import os
import resource
import tempfile
import time

from benchmarks import flops

CHANNELS = {"x": 3, "x_target": 3, "pose": 18, "pose_target": 18, "mask": 1, "mask_target": 1}


# ---- memory -----------------------------------------------------------------------------------


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Resets this process's peak resident set (VmHWM) to its current size; False if the
    kernel does not allow it (then peaks are since the process started)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory (MiB) since the start or the last :func:`reset_peak_rss`."""
    peak_kib = _proc_status_kib("VmHWM")
    if peak_kib is None:  # ru_maxrss is KiB on Linux
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak_kib / 1024


# ---- inputs ------------------------------------------------------------------------------------


def cpu_simd_flags() -> list[str]:
    """This CPU's vector-instruction flags (avx*, amx*) from /proc/cpuinfo: the day's machine."""
    from pg2_tf.core import hardware

    flags = hardware.cpu_flags(hardware.read_cpuinfo(hardware.CPUINFO) or "")
    return sorted(flag for flag in flags if flag.startswith(("avx", "amx")))


def random_arrays(batch_size, img_H, img_W, seed=0):
    """A batch like pg2_tf.records.reader's as float32 numpy arrays (N, H, W, C): images in [-1, 1],
    poses in {-1, 1}, masks in {0, 1}; the same for the same seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = {}
    for key, channels in CHANNELS.items():
        shape = (batch_size, img_H, img_W, channels)
        if key.startswith("pose"):
            values = np.where(rng.uniform(size=shape) < 0.03, 1.0, -1.0)
        elif key.startswith("mask"):
            values = rng.uniform(size=shape) < 0.4
        else:
            values = rng.uniform(-1, 1, size=shape)
        batch[key] = values.astype(np.float32)
    return batch


# ---- the machine's limit -----------------------------------------------------------------------

# The reference convolution: a 3x3 conv, 128 -> 128 channels, on a batch of 16 64x32 maps (the
# size of G1's second encoder block at hidden 64); 9.7 GFLOP forward.
LIMIT_CONV = {"batch": 16, "height": 64, "width": 32, "channels": 128, "kernel": 3}


def limit_calls(dtype="float32") -> dict:
    """Calls of :data:`LIMIT_CONV` through TensorFlow's own kernels, computed in ``dtype``
    (the kernel a float32 variable cast to it, as Keras' mixed policies do), each with its
    GFLOP: ``{"forward": (call, gflop), "training": (call, gflop)}``.

    ``forward``: the Conv2D alone (what inference runs); ``training``: the Conv2D and both of
    its gradients (Conv2DBackpropInput, Conv2DBackpropFilter), a training step's mix. Timed
    beside a phase, their GFLOP/s is the machine's sustained convolution throughput, the limit
    a phase's GFLOP/s is compared with.
    """
    import tensorflow as tf

    c = LIMIT_CONV
    shape = [c["batch"], c["height"], c["width"], c["channels"]]
    kernel_shape = [c["kernel"], c["kernel"], c["channels"], c["channels"]]
    images = tf.cast(tf.random.stateless_uniform(shape, (1, 2), -1, 1), dtype)
    kernel = tf.Variable(tf.random.stateless_uniform(kernel_shape, (3, 4), -0.05, 0.05))

    def loss(cast_kernel):
        outputs = tf.nn.conv2d(images, cast_kernel, 1, "SAME")
        return tf.reduce_sum(tf.square(tf.cast(outputs, tf.float32)))

    def forward():
        return loss(tf.cast(kernel, dtype))

    def training():
        with tf.GradientTape() as tape:
            cast_kernel = tf.cast(kernel, dtype)
            tape.watch([images, cast_kernel])
            value = loss(cast_kernel)
        gradients = tape.gradient(value, [images, cast_kernel])
        return sum(tf.reduce_sum(tf.cast(g, tf.float32)) for g in gradients)

    calls = {}
    for name, fn in (("forward", forward), ("training", training)):
        compiled = tf.function(fn, autograph=False)
        gflop = flops.count_graph_flops(compiled.get_concrete_function().graph) / 1e9
        calls[name] = (lambda compiled=compiled: compiled().numpy(), gflop)
    return calls


# ---- profile ------------------------------------------------------------------------------------


def profile_ops(fn, calls, trace_dir=None) -> list[dict]:
    """Op-level profile of ``calls`` calls of ``fn`` through TensorFlow's profiler.

    Returns one row per op type, most time first: ``op`` (the type as the executor ran it,
    after Grappler's rewrites, e.g. ``_MklFusedConv2D``), ``ms_per_call`` (summed over the
    executor's threads, so parallel ops each count), ``count_per_call`` and ``share`` of the
    summed op time. The trace goes to ``trace_dir`` (TensorBoard's profile plugin reads it) or
    a temporary folder that is deleted.
    """
    import collections
    import glob
    import shutil

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    folder = trace_dir or tempfile.mkdtemp(prefix="pg2_profile_")
    try:
        tf.profiler.experimental.start(folder)
        try:
            for _ in range(calls):
                fn()
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        (path,) = sorted(glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True))[-1:]
        with open(path, "rb") as handle:
            space.ParseFromString(handle.read())
    finally:
        if trace_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    picoseconds, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads
                continue
            for event in line.events:
                metadata = plane.event_metadata[event.metadata_id]
                name = metadata.name  # ops are "node name:op type"; "Class::Method" not
                if ":" not in name or "::" in name:
                    continue
                op_type = metadata.display_name or name.rsplit(":", 1)[-1]
                picoseconds[op_type] += event.duration_ps
                counts[op_type] += 1
    total = sum(picoseconds.values()) or 1
    return [
        {
            "op": op_type,
            "ms_per_call": ps / 1e9 / calls,
            "count_per_call": counts[op_type] / calls,
            "share": ps / total,
        }
        for op_type, ps in picoseconds.most_common()
    ]


def format_profile(rows, top) -> str:
    """The first ``top`` rows of :func:`profile_ops` as a Markdown table, plus the rest summed."""
    lines = ["| op | ms per call | ops per call | share |", "|---|---|---|---|"]
    for row in rows[:top]:
        lines.append(
            f"| {row['op']} | {row['ms_per_call']:.1f} | {row['count_per_call']:.0f} | "
            f"{row['share']:.1%} |"
        )
    rest = rows[top:]
    if rest:
        lines.append(
            f"| {len(rest)} other op types | {sum(r['ms_per_call'] for r in rest):.1f} | "
            f"{sum(r['count_per_call'] for r in rest):.0f} | {sum(r['share'] for r in rest):.1%} |"
        )
    lines.append(
        f"| all ops | {sum(r['ms_per_call'] for r in rows):.1f} | "
        f"{sum(r['count_per_call'] for r in rows):.0f} | 100% |"
    )
    return "\n".join(lines)


# ---- timing ------------------------------------------------------------------------------------


def time_interleaved(fns, steps, warmup) -> list[dict]:
    """Times the calls ``fns`` in turn (first, second, ..., first, second, ...), so that a
    slower or faster spell of a shared machine falls on all alike; one timing per call."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    records = [([], []) for _ in fns]
    for _ in range(steps):
        for call, (walls, cpus) in zip(fns, records, strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return [_timing(walls, cpus) for walls, cpus in records]


def _timing(walls, cpus) -> dict:
    import numpy as np

    return {
        "median_s": float(np.median(walls)),
        "min_s": float(np.min(walls)),
        "cpu_share": float(sum(cpus) / sum(walls)),
        "times_s": [round(t, 4) for t in walls],
    }


def fetch(values):
    """Waits for ``values`` (tensors, dict or tuple of them) by copying them to the host."""
    import tensorflow as tf

    tf.nest.map_structure(lambda v: v.numpy(), values)
