"""What every benchmark shares: machine record, timing, workers, output.

Benchmarks run from the repository root as modules (`python -m
benchmarks.NAME`). Timings are medians of repeated calls after warm-up, and
contenders that are compared are timed alternately, round by round, so that
the load of a shared machine falls on all of them alike. Peak memory is
measured in a fresh worker process (see `run_worker`).
"""

import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPOSITORY = Path(__file__).parent.parent
PACKAGES = ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "torch", "timm")


def machine_info():
    """Platform, CPU count, threads and package versions of this run."""
    versions = {}
    for package in PACKAGES + ("lambda-networks",):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def interleaved_timings(contenders, repeats=10, warmup=2):
    """Seconds of each call of each contender, timed alternately.

    Args:
        contenders: dict of name -> callable that runs one call to
            completion (results fetched to the host).
        repeats: timed rounds; each round calls every contender once, in
            the given order and in reverse order in every other round, so
            that no contender always follows the same one (what a call
            leaves behind, caches or a busy allocator, slows the next).
        warmup: untimed rounds first (tracing, compilation, caches).

    Returns:
        dict of name -> list of seconds, one per round: the i-th of each
        list were timed one after the other, so their ratio is free of what
        the machine did between rounds.
    """
    for _ in range(warmup):
        for run in contenders.values():
            run()
    timings = {name: [] for name in contenders}
    order = list(contenders.items())
    for round_index in range(repeats):
        for name, run in order[::-1] if round_index % 2 else order:
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    return timings


def interleaved_medians(contenders, repeats=10, warmup=2):
    """Median seconds per call of each contender, timed alternately (see
    `interleaved_timings`): dict of name -> median seconds."""
    timings = interleaved_timings(contenders, repeats=repeats, warmup=warmup)
    return {name: statistics.median(values) for name, values in timings.items()}


def tf_gradient_step(layer, jit_compile=False):
    """A `tf.function` of `layer`'s (or a model's) training-mode forward and
    backward pass: `x -> gradients of sum(layer(x))` with respect to `x` and
    the layer's trainable variables."""
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile, autograph=False)
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    return forward_backward


def rss_bytes(pid="self"):
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_worker(module, arguments, memory_cap_gib=20.0, environment=None):
    """Runs `python -m module arguments` and returns its last line as JSON.

    The worker prints one JSON object as its last line. A worker whose
    resident memory grows past `memory_cap_gib` is stopped.

    Returns:
        The worker's dict with "status": "ok", or {"status": "out of memory"
        | "error", ...} with the reason.
    """
    command = [sys.executable, "-m", module, *arguments]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(environment or {}))
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
        env=env,
    )
    peak, cap = 0, memory_cap_gib * 2**30
    while process.poll() is None:
        try:
            peak = max(peak, rss_bytes(process.pid))
        except (FileNotFoundError, ProcessLookupError):
            break
        if peak > cap:
            process.kill()
            process.wait()
            return {"status": "out of memory", "peak_bytes": peak}
        time.sleep(0.05)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        allocation_failure = any(
            marker in stderr for marker in ("ResourceExhausted", "OOM", "bad_alloc")
        )
        out_of_memory = process.returncode in (-9, 137) or allocation_failure
        return {
            "status": "out of memory" if out_of_memory else "error",
            "returncode": process.returncode,
            "detail": (stderr.strip().splitlines() or [""])[-1],
        }
    result = json.loads(stdout.strip().splitlines()[-1])
    result["status"] = "ok"
    return result


def run_backend_worker(module, backend, worker_arguments):
    """`run_worker` of `python -m module --worker JSON`, where JSON is the
    list `worker_arguments`, with KERAS_BACKEND=`backend`."""
    return run_worker(
        module,
        ["--worker", json.dumps(list(worker_arguments))],
        environment={"KERAS_BACKEND": backend},
    )


def write_report(name, report):
    """Writes benchmarks/results/NAME.json with the machine record added."""
    report = {
        "benchmark": name,
        "command": f"python -m benchmarks.{name} " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        **report,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path.relative_to(REPOSITORY)}")
    return path


def markdown_table(headers, rows):
    """A Markdown table as a string."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def save_bar_plot(path, labels, series, ylabel, title, reference=1.0):
    """Grouped horizontal bar chart (matplotlib, Agg) of `series` per label.

    Args:
        path: the PNG to write.
        labels: one label per group (bar positions, top to bottom).
        series: dict of series name -> one value per label (None: no bar).
        ylabel: the value axis title.
        title: the plot title.
        reference: where to draw a dashed reference line, or None.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(series)
    height = 0.8 / max(count, 1)
    figure, axes = plt.subplots(figsize=(8, 0.5 + 0.45 * len(labels) * count))
    for index, (name, values) in enumerate(series.items()):
        positions = [i + (index - (count - 1) / 2) * height for i in range(len(labels))]
        shown = [(p, v) for p, v in zip(positions, values) if v is not None]
        axes.barh(
            [p for p, _ in shown], [v for _, v in shown], height=height, label=name
        )
    axes.set_yticks(range(len(labels)), labels)
    axes.invert_yaxis()
    axes.set_xlabel(ylabel)
    axes.set_title(title, fontsize=10)
    if reference is not None:
        axes.axvline(reference, color="grey", linestyle="--", linewidth=1)
    axes.legend(fontsize=8)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
