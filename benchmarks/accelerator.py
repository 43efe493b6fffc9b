"""LambdaResNets on a GPU: JAX and PyTorch backends against timm, per formulation.

    python -m benchmarks.accelerator                     # GPU, under 8 minutes
    python -m benchmarks.accelerator --time-budget 300   # stop sooner
    python -m benchmarks.accelerator --quick             # CPU smoke run (~1 min)

Throughput (images/s) of our `LambdaResNet26T`, `LambdaResNet50TS` and the
hybrid `LambdaResNet50` (random weights) against timm's `lambda_resnet26t`,
`resnet26t` and `lambda_resnet50ts`, for three passes: inference in float32
and in bfloat16, and training (one full SGD-with-momentum step, float32).

- Ours run through Keras' own loops: `predict_on_batch` and
  `train_on_batch` after `model.compile(jit_compile=...)`. Compile modes:
  "jax.jit" (JAX backend, `jit_compile=True`), "torch eager" (PyTorch
  backend, `jit_compile=False`) and "torch.compile" (PyTorch backend,
  `jit_compile=True`, with which Keras wraps its train and predict steps in
  `torch.compile`). bfloat16 is the `mixed_bfloat16` policy (the lambda
  layers accumulate in float32 under it).
- The lambda convolution runs in each formulation ("conv3d", "conv2d",
  "depthwise": `implementation=<formulation>` forces it in every lambda
  layer) and as "auto" (`implementation="auto"`: per layer the einsum or
  the convolution, whichever the cost model picks, in the formulation of
  `lambda_keras.ops.CONV_FORMULATION_TABLE` for the backend and GPU).
- timm runs eager (and under `torch.compile`), `torch.no_grad()` for
  inference, `torch.autocast(dtype=torch.bfloat16)` for bfloat16.

GMACs are per image: ours counted as the paper does
(`lambda_keras.applications.flops.count_multiply_adds`: the position
lambdas' pairs inside the scope only), timm's by
`torch.utils.flop_counter.FlopCounterMode` (every matmul and convolution,
halved). Params are trainable parameters.

Keras fixes its backend at import, so the jobs run in worker processes,
one per run of consecutive jobs of one backend (`JOBS` is in priority
order: timm and "auto" first, then the formulations, torch.compile and the
larger models). Each worker appends a row per finished job to a file, so a
worker stopped at the budget loses nothing it finished. `--time-budget`
(default 450 s): a job starts only if the time it is expected to take (the
longest finished job of its kind so far, else `FIRST_JOB_SECONDS`) fits in
what is left, and a worker still running at the budget is stopped; the
report then lists the jobs not run. Writes benchmarks/results/accelerator.csv
(timm's benchmark columns: model, backend, compile mode, formulation, pass,
batch, image size, GMACs, params, images/s) and accelerator.json (with the
Markdown table, the jobs not run and the failures).

On the device machine (see /work/.library/device/README.md): it has JAX,
PyTorch and timm but not Keras, and no network. The working tree that
travels holds lambda_keras (run with `PYTHONPATH=.`); carry Keras and the
two of its dependencies the image lacks as wheels, downloaded here once:

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl keras==3.15.1 namex optree

then run, with `carry: [".whl"]` and a `timeout_s` of 540 (the budget, the
workers' start and the copy of the results fit in it):

    python3 -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --target /tmp/site .whl/*.whl \
      && PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 \
        python3 -m benchmarks.accelerator --time-budget 450 \
      ; cp benchmarks/results/accelerator.* $OUT/

(or a wheel of lambda_keras, `pip wheel --no-deps -w .whl .`, installed
the same way). The tool sends the session's own checkout: commit there
what the run needs first. The image's PyTorch (2.11) and JAX (0.11) are
not this repository's pins, and it has no TensorFlow. The GPU rows of
`lambda_keras.ops.CUSTOM_GRADIENT_TABLE` and `CONV_FORMULATION_TABLE` can
be measured in another call, `KERAS_BACKEND=jax` (or `torch`) `python3 -m
benchmarks.lambda_conv_profile --only formulations`, which writes
lambda_conv_profile_<backend>_gpu.json.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common
from benchmarks.common import REPOSITORY
from benchmarks.common import interleaved_medians
from benchmarks.common import markdown_table
from benchmarks.common import write_report

# name -> (source, constructor or timm name, image size)
MODELS = {
    "LambdaResNet26T": ("ours", "LambdaResNet26T", 256),
    "LambdaResNet50TS": ("ours", "LambdaResNet50TS", 256),
    "LambdaResNet50": ("ours", "LambdaResNet50", 224),
    "timm lambda_resnet26t": ("timm", "lambda_resnet26t", 256),
    "timm resnet26t": ("timm", "resnet26t", 256),
    "timm lambda_resnet50ts": ("timm", "lambda_resnet50ts", 256),
}
OURS = ("LambdaResNet26T", "LambdaResNet50TS", "LambdaResNet50")
TIMM = ("timm lambda_resnet26t", "timm resnet26t", "timm lambda_resnet50ts")
FORMULATIONS = ("conv3d", "conv2d", "depthwise")
PASSES = ("inference fp32", "inference bf16", "training fp32")
# compile mode -> Keras backend of its worker
COMPILE_MODES = {"jax.jit": "jax", "torch eager": "torch", "torch.compile": "torch"}
BATCH = {"inference": 256, "training": 128}
WARMUP, REPEATS = 2, 10
DEFAULT_TIME_BUDGET = 450.0
# Expected seconds of a job of a compile mode before one has run.
FIRST_JOB_SECONDS = {"jax.jit": 45.0, "torch eager": 15.0, "torch.compile": 90.0}
CSV_COLUMNS = (
    "model",
    "backend",
    "compile_mode",
    "formulation",
    "pass",
    "batch",
    "image_size",
    "gmacs",
    "params",
    "images_per_second",
)


def _jobs(models, modes, formulations, passes):
    """Jobs (model, compile mode, formulation, pass) of a cross product."""
    return [
        {"model": model, "mode": mode, "formulation": formulation, "pass": name}
        for model in models
        for mode in modes
        for formulation in (formulations if model in OURS else ("-",))
        for name in passes
    ]


# In priority order: the references and the library's choice first.
JOBS = (
    _jobs(TIMM, ["torch eager"], ["-"], PASSES)
    + _jobs(OURS, ["torch eager"], ["auto"], PASSES)
    + _jobs(OURS, ["jax.jit"], ["auto"], PASSES)
    + _jobs(["LambdaResNet26T"], ["jax.jit"], FORMULATIONS, PASSES[::2])
    + _jobs(["LambdaResNet26T"], ["torch eager"], FORMULATIONS, PASSES[::2])
    + _jobs(
        ["timm lambda_resnet26t", "timm resnet26t", "LambdaResNet26T"],
        ["torch.compile"],
        ["auto"],
        PASSES[::2],
    )
    + _jobs(OURS[1:], ["jax.jit"], FORMULATIONS, PASSES[::2])
    + _jobs(OURS[1:], ["torch eager"], FORMULATIONS, PASSES[::2])
)
# --quick: a CPU smoke run of every code path but torch.compile, tiny.
QUICK_JOBS = (
    _jobs(["timm lambda_resnet26t"], ["torch eager"], ["-"], PASSES[::2])
    + _jobs(["LambdaResNet26T"], ["torch eager"], ["auto"], PASSES[::2])
    + _jobs(["LambdaResNet26T"], ["torch eager"], ["conv3d"], PASSES[:1])
    + _jobs(["LambdaResNet26T"], ["jax.jit"], ["depthwise"], PASSES[:1])
)
QUICK_SIZE, QUICK_BATCH = 32, 2


def _torch_device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _synchronize():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _our_model(job, size, cache):
    """Our model for `job`, compiled for its pass; and its counts.

    A model is built once per formulation and precision (`cache`) and
    compiled again for each job.
    """
    import keras
    import numpy as np

    from lambda_keras.applications import MODELS as CONSTRUCTORS
    from lambda_keras.applications.flops import count_multiply_adds

    _, constructor, _ = MODELS[job["model"]]
    policy = "mixed_bfloat16" if job["pass"].endswith("bf16") else "float32"
    key = (constructor, job["formulation"], policy)
    if key not in cache:
        keras.utils.set_random_seed(0)
        keras.config.set_dtype_policy(policy)
        try:
            model = CONSTRUCTORS[constructor](
                weights=None,
                input_shape=(size, size, 3),
                implementation=job["formulation"],
            )
        finally:
            keras.config.set_dtype_policy("float32")
        counts = (
            count_multiply_adds(model) / 1e9,
            int(sum(np.prod(weight.shape) for weight in model.trainable_weights)),
        )
        cache[key] = model, counts
    model, counts = cache[key]
    jit_compile = job["mode"] != "torch eager"
    if job["pass"].startswith("training"):
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit_compile,
        )
    else:
        model.compile(jit_compile=jit_compile)
    return model, counts


def _our_step(job, size, batch, cache):
    """A callable running one batch of `job` to completion; and the counts."""
    import keras
    import numpy as np

    model, counts = _our_model(job, size, cache)
    rng = np.random.default_rng(0)
    # On the device once: the steps time the model, not the copy to it.
    images = keras.ops.convert_to_tensor(
        rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    )
    if job["pass"].startswith("training"):
        labels = keras.ops.convert_to_tensor(rng.integers(0, 1000, (batch,)))

        def step():
            return float(model.train_on_batch(images, labels))

    else:

        def step():
            return model.predict_on_batch(images)

    return step, counts


def _timm_model(name, size, device, cache):
    """timm's model (built once, `cache`), its GMACs per image
    (FlopCounterMode, halved) and its parameters."""
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if name not in cache:
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False).to(device).eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, size, size, device=device))
        parameters = sum(parameter.numel() for parameter in model.parameters())
        cache[name] = model, (counter.get_total_flops() / 2 / 1e9, int(parameters))
    return cache[name]


def _timm_step(job, size, batch, cache):
    """A callable running one batch of timm's model to completion; counts."""
    import torch

    _, name, _ = MODELS[job["model"]]
    device = _torch_device()
    model, counts = _timm_model(name, size, device, cache)
    runner = torch.compile(model) if job["mode"] == "torch.compile" else model
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    if job["pass"].startswith("training"):
        model.train()
        labels = torch.randint(0, 1000, (batch,), device=device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_function = torch.nn.CrossEntropyLoss()

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(runner(images), labels)
            loss.backward()
            optimizer.step()
            return loss.item()

    else:
        model.eval()
        bfloat16 = job["pass"].endswith("bf16")

        def step():
            with (
                torch.no_grad(),
                torch.autocast(device, dtype=torch.bfloat16, enabled=bfloat16),
            ):
                outputs = runner(images)
            _synchronize()
            return outputs

    return step, counts


def run_job(job, quick, cache):
    """Times one job; returns its CSV row (a dict)."""
    import keras

    source, _, size = MODELS[job["model"]]
    kind = "training" if job["pass"].startswith("training") else "inference"
    size, batch = (QUICK_SIZE, QUICK_BATCH) if quick else (size, BATCH[kind])
    make_step = _timm_step if source == "timm" else _our_step
    step, (gmacs, params) = make_step(job, size, batch, cache)
    warmup, repeats = (1, 1) if quick else (WARMUP, REPEATS)
    seconds = interleaved_medians({"step": step}, repeats=repeats, warmup=warmup)
    return {
        "model": job["model"],
        "backend": "torch" if source == "timm" else keras.backend.backend(),
        "compile_mode": job["mode"],
        "formulation": job["formulation"],
        "pass": job["pass"],
        "batch": batch,
        "image_size": size,
        "gmacs": round(gmacs, 3),
        "params": params,
        "images_per_second": round(batch / seconds["step"], 2),
    }


def worker(jobs, deadline, rows_path, quick):
    """Runs `jobs` in order, appending one JSON line per job to `rows_path`.

    A job starts only if it is expected to end before `deadline` (epoch
    seconds): the longest job of its compile mode so far, else
    `FIRST_JOB_SECONDS`; the first one that would not ends the worker.
    """
    if quick and os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        # One thread: on a loaded small CPU, PyTorch's threads wait on each
        # other (timm's tiny model took 1.4 s a call on two, 30 ms on one).
        torch.set_num_threads(1)
    durations = {}
    cache = {}
    for job in jobs:
        mode = job["mode"]
        expected = max(durations.get(mode, [FIRST_JOB_SECONDS[mode]]))
        if time.time() + expected > deadline:
            return
        start = time.time()
        try:
            record = {"job": job, "status": "ok", "row": run_job(job, quick, cache)}
        except Exception as error:  # one failed job, not the whole run
            record = {"job": job, "status": f"error: {type(error).__name__}: {error}"}
        record["seconds"] = round(time.time() - start, 1)
        durations.setdefault(mode, []).append(record["seconds"])
        with open(rows_path, "a", encoding="utf-8") as rows:
            rows.write(json.dumps(record) + "\n")


def _worker_runs(jobs):
    """Consecutive jobs of one backend: [(backend, jobs)]."""
    runs = []
    for job in jobs:
        backend = COMPILE_MODES[job["mode"]]
        if runs and runs[-1][0] == backend:
            runs[-1][1].append(job)
        else:
            runs.append((backend, [job]))
    return runs


def run_jobs(jobs, time_budget, quick):
    """Runs `jobs` in worker processes within `time_budget` seconds.

    Returns:
        One record per job: {"job", "status", and "row" when "ok"}, with
        status "ok", "error: ..." or "not run: ..." (the time budget, or
        the worker's exit).
    """
    deadline = time.time() + time_budget
    records = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (backend, run) in enumerate(_worker_runs(jobs)):
            rows_path = os.path.join(folder, f"rows_{index}.jsonl")
            open(rows_path, "w", encoding="utf-8").close()
            reason = "time budget"
            if time.time() < deadline:
                reason = _run_worker_until(backend, run, deadline, rows_path, quick)
            with open(rows_path, encoding="utf-8") as rows:
                finished = [json.loads(line) for line in rows if line.strip()]
            records += finished
            records += [
                {"job": job, "status": f"not run: {reason}"}
                for job in run[len(finished) :]
            ]
    return records


def _run_worker_until(backend, jobs, deadline, rows_path, quick):
    """One worker process for `jobs`, stopped if it outlasts `deadline`.

    Unlike `common.run_worker` (which waits for the worker and reads its
    last line), the rows come from the file the worker appends to, so a
    worker stopped at the budget keeps the jobs it finished.

    Returns:
        Why the jobs it did not finish were not run.
    """
    command = [
        sys.executable,
        "-m",
        "benchmarks.accelerator",
        "--worker",
        json.dumps(jobs),
        "--deadline",
        str(deadline),
        "--rows",
        rows_path,
    ] + (["--quick"] if quick else [])
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        command,
        cwd=REPOSITORY,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, errors = process.communicate(timeout=max(deadline - time.time(), 1.0))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return "time budget (worker stopped)"
    if process.returncode != 0:
        last = (errors.strip().splitlines() or [""])[-1]
        print(f"{backend} worker failed: {last}", file=sys.stderr)
        return f"{backend} worker exited {process.returncode}: {last}"
    return "time budget"


def write_results(records, time_budget, quick):
    """accelerator.csv and accelerator.json in `common.RESULTS`."""
    rows = [record["row"] for record in records if record["status"] == "ok"]
    common.RESULTS.mkdir(exist_ok=True)
    csv_path = common.RESULTS / "accelerator.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as output:
        writer = csv.DictWriter(output, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    not_run = [r for r in records if r["status"].startswith("not run")]
    failures = [r for r in records if not r["status"].startswith(("ok", "not run"))]
    table = markdown_table(
        list(CSV_COLUMNS), [[row[column] for column in CSV_COLUMNS] for row in rows]
    )
    note = (
        f"Images/s per job (batch {QUICK_BATCH} at {QUICK_SIZE} px, CPU smoke run)"
        if quick
        else "Images/s per job"
    ) + (
        f"; {len(rows)} jobs run, {len(not_run)} not run within the "
        f"{time_budget:.0f} s budget, {len(failures)} failed."
    )
    write_report(
        "accelerator",
        {
            "title": "LambdaResNets on an accelerator: JAX and PyTorch vs timm",
            "markdown": note + "\n\n" + table,
            "device": _device_name(),
            "time_budget_seconds": time_budget,
            "rows": rows,
            "not_run": not_run,
            "failures": failures,
        },
    )
    print(f"wrote {csv_path.relative_to(common.REPOSITORY)}")
    return csv_path


def _device_name():
    """The GPU's name, or "cpu"."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET,
        help="seconds for all jobs; the run stops cleanly within it",
    )
    parser.add_argument(
        "--quick", action="store_true", help="CPU smoke run: 32 px, batch 2"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--rows", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker), args.deadline, args.rows, args.quick)
        return
    jobs = QUICK_JOBS if args.quick else JOBS
    records = run_jobs(jobs, args.time_budget, args.quick)
    for record in records:
        print(record.get("row") or f"{record['job']}: {record['status']}")
    write_results(records, args.time_budget, args.quick)


if __name__ == "__main__":
    main()
