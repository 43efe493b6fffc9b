"""benchmarks.accelerator: its CPU smoke run, its job list and its time budget."""

import csv
import json
import time

import pytest

from benchmarks import accelerator
from benchmarks import common


@pytest.mark.slow
def test_quick_run_writes_a_csv_row_per_job(tmp_path, monkeypatch):
    # The reports go to tmp_path/results (named relative to tmp_path); the
    # workers still run in the repository.
    results = tmp_path / "results"
    monkeypatch.setattr(common, "RESULTS", results)
    monkeypatch.setattr(common, "REPOSITORY", tmp_path)

    accelerator.main(["--quick", "--time-budget", "300"])

    with open(results / "accelerator.csv", newline="", encoding="utf-8") as rows:
        reader = csv.DictReader(rows)
        rows = list(reader)
    assert tuple(reader.fieldnames) == accelerator.CSV_COLUMNS
    assert [(row["model"], row["compile_mode"], row["pass"]) for row in rows] == [
        (job["model"], job["mode"], job["pass"]) for job in accelerator.QUICK_JOBS
    ]
    assert all(float(row["images_per_second"]) > 0 for row in rows)
    assert all(float(row["gmacs"]) > 0 and int(row["params"]) > 0 for row in rows)
    assert {row["backend"] for row in rows} == {"jax", "torch"}
    report = json.loads((results / "accelerator.json").read_text(encoding="utf-8"))
    assert report["not_run"] == [] and report["failures"] == []
    assert len(report["rows"]) == len(rows)


def test_full_run_covers_every_model_mode_and_formulation():
    jobs = accelerator.JOBS
    ours = {(job["model"], job["formulation"]) for job in jobs}
    assert {
        (model, formulation)
        for model in accelerator.OURS
        for formulation in ("auto", *accelerator.FORMULATIONS)
    } <= ours
    assert {job["mode"] for job in jobs} == set(accelerator.COMPILE_MODES)
    assert {job["model"] for job in jobs} == set(accelerator.MODELS)
    assert {job["pass"] for job in jobs} == set(accelerator.PASSES)
    # Each job once; the references (timm) first.
    assert len({json.dumps(job) for job in jobs}) == len(jobs)
    assert jobs[0]["model"] in accelerator.TIMM
    # One worker per run of consecutive jobs of a backend: few starts.
    assert len(accelerator._worker_runs(jobs)) <= 8


def test_no_job_starts_past_the_time_budget(tmp_path):
    records = accelerator.run_jobs(accelerator.QUICK_JOBS, 0.0, quick=True)
    assert [record["status"] for record in records] == ["not run: time budget"] * len(
        accelerator.QUICK_JOBS
    )

    rows = tmp_path / "rows.jsonl"
    rows.write_text("", encoding="utf-8")
    accelerator.worker(accelerator.QUICK_JOBS, time.time() + 1.0, str(rows), True)
    # Every job is expected to take longer than the second left.
    assert rows.read_text(encoding="utf-8") == ""
