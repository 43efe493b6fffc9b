"""benchmarks.run_all renders the README from reports; model_vs_timm runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import run_all

REPOSITORY = Path(__file__).resolve().parents[2]


def _report(name, title, markdown, plots=(), date="2026-01-01 00:00 UTC"):
    return {
        "benchmark": name,
        "command": f"python -m benchmarks.{name} ",
        "machine": {
            "date": date,
            "platform": "Linux-test",
            "processor": "Test CPU 3000",
            "cpus": 2,
            "python": "3.11.0",
            "versions": {"keras": "3.99.0", "tensorflow-cpu": "2.99.0"},
        },
        "title": title,
        "markdown": markdown,
        "plots": list(plots),
    }


def _write(directory, name, report):
    path = directory / f"{name}.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def test_readme_has_each_report_in_module_order(tmp_path):
    _write(
        tmp_path,
        "model_vs_timm",
        _report("model_vs_timm", "Model vs peer", "| a | b |\n|---|---|\n| 1 | 2 |"),
    )
    _write(
        tmp_path,
        "models",
        _report(
            "models",
            "Models vs ResNet50",
            "| model | ratio |\n|---|---|\n| hybrid | 0.91 |",
            plots=["results/models.png"],
        ),
    )
    _write(
        tmp_path,
        "models_xla",
        _report("models_xla", "Models under XLA", "| x |\n|---|\n| 9 |"),
    )
    # Reports without markdown (older formats) and broken files are skipped.
    (tmp_path / "legacy.json").write_text('{"rows": []}', encoding="utf-8")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")

    readme = run_all.write_readme(tmp_path, tmp_path / "README.md").read_text()

    for text in (
        "## Models vs ResNet50",
        "| hybrid | 0.91 |",
        "`python -m benchmarks.models`",
        "![Models vs ResNet50](results/models.png)",
        "## Model vs peer",
        "| 1 | 2 |",
        "`python -m benchmarks.model_vs_timm`",
        "## Models under XLA",
        "Test CPU 3000",
        "2026-01-01 00:00 UTC",
        "keras 3.99.0",
        "python -m benchmarks.run_all --render-only",
    ):
        assert text in readme, text
    assert "legacy" not in readme and "broken" not in readme
    order = [readme.index(f"## {t}") for t in ("Models vs", "Models under", "Model vs")]
    assert order == sorted(order)


def test_readme_without_results(tmp_path):
    readme = run_all.render(run_all.load_reports(tmp_path))
    assert readme.startswith("# Benchmarks")
    assert "No results yet." in readme


def test_module_list_only_has_existing_files():
    for name in run_all.available():
        assert (REPOSITORY / "benchmarks" / f"{name}.py").exists()
    assert run_all.available(("models", "no_such_benchmark")) == ["models"]


@pytest.mark.slow
def test_model_vs_timm_runs_end_to_end():
    pytest.importorskip("timm")
    path = REPOSITORY / "benchmarks" / "results" / "model_vs_timm.json"
    before = path.read_bytes() if path.exists() else None
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.model_vs_timm",
                "--batch",
                "1",
                "--size",
                "64",
                "--repeats",
                "1",
                "--rounds",
                "1",
            ],
            cwd=REPOSITORY,
            check=True,
            capture_output=True,
            timeout=300,
        )
        report = json.loads(path.read_text(encoding="utf-8"))
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)
    throughputs = {r["contender"]: r["images_per_second"] for r in report["results"]}
    assert "ours, tf.function" in throughputs
    assert "timm, torch.no_grad" in throughputs
    assert all(value > 0 for value in throughputs.values())
    assert (
        report["parameters"]["ours_trainable"]
        == (report["parameters"]["timm_parameters"])
    )
    assert "markdown" in report and report["machine"]["cpus"] >= 1


def test_backend_benchmarks_run_once_per_backend():
    runs = run_all.invocations(["lambda_conv_profile", "models"])
    assert runs == [
        ("lambda_conv_profile (tensorflow)", "lambda_conv_profile", "tensorflow"),
        ("lambda_conv_profile (jax)", "lambda_conv_profile", "jax"),
        ("lambda_conv_profile (torch)", "lambda_conv_profile", "torch"),
        ("models", "models", None),
    ]
    assert set(run_all.PER_BACKEND) <= set(run_all.BENCHMARKS)
