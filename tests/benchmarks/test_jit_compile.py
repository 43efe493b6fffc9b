"""benchmarks.jit_compile times the same training step compiled and not."""

import json

import pytest

from benchmarks import jit_compile


@pytest.mark.slow
def test_worker_reports_both_modes(capsys):
    jit_compile.worker(size=64, batch=2, repeats=1)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for figures in (report["images_per_second"], report["first_step_seconds"]):
        assert set(figures) == {"compiled", "uncompiled"}
        assert all(value > 0 for value in figures.values())
    # The first step traces (and compiles) it: slower than a timed step.
    rate = report["images_per_second"]["uncompiled"]
    assert report["first_step_seconds"]["uncompiled"] > 2 / rate
