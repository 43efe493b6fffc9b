"""benchmarks.lambda_vs_conv's ratios pair each round's timings and mark a
target met only where every median ratio is at least 1 and timm's."""

import pytest

from benchmarks import lambda_vs_conv


def test_ratio_pairs_the_rounds_timed_together():
    seconds = {
        "status": "ok",
        # The machine slows down in the second round: both contenders do.
        "lambda inference": [1.0, 2.0, 1.0],
        "twin inference": [1.2, 2.2, 0.9],
    }
    median, lowest, highest = lambda_vs_conv._ratio(seconds, "inference")
    assert median == pytest.approx(1.1)
    assert (lowest, highest) == pytest.approx((0.9, 1.2))
    assert lambda_vs_conv._cell((median, lowest, highest)) == "1.10 (0.90-1.20)"


def test_failed_workers_have_no_ratio():
    assert lambda_vs_conv._ratio({"status": "error"}, "training") is None
    assert lambda_vs_conv._ratio(None, "training") is None
    assert lambda_vs_conv._cell(None) == "—"


@pytest.mark.parametrize(
    ("ours", "timm", "expected"),
    [
        ([(1.05, 0.9, 1.1), (1.2, 1.1, 1.3)], [(1.0, 1, 1), (1.1, 1, 1)], "met"),
        # Below 1, whatever the spread reaches.
        ([(0.98, 0.9, 1.1), (1.2, 1.1, 1.3)], [None, None], "missed"),
        # Above 1 but below timm's median.
        ([(1.05, 1.0, 1.1), (1.2, 1.1, 1.3)], [(1.06, 1, 1), None], "missed"),
        ([None, (1.2, 1.1, 1.3)], [None, None], "not measured"),
    ],
)
def test_target_reads_the_medians(ours, timm, expected):
    assert lambda_vs_conv._target(ours, timm) == expected


def test_task_timings_give_each_task_rounds_of_its_own():
    calls = []
    steps = {
        f"{label} {task}": (lambda n=f"{label} {task}": calls.append(n))
        for label in ("lambda", "twin")
        for task in ("inference", "training")
    }
    timings = lambda_vs_conv.task_timings(steps, repeats=2)
    assert set(timings) == set(steps)
    assert all(len(seconds) == 2 for seconds in timings.values())
    # Warm-up and two rounds (the second reversed) of inference, then of
    # training: a training step never comes between two inference steps.
    assert calls == [
        *("lambda inference", "twin inference") * 2,
        "twin inference",
        "lambda inference",
        *("lambda training", "twin training") * 2,
        "twin training",
        "lambda training",
    ]


def test_missed_cells_names_each_ratio_below_target():
    def seconds(inference, training):
        # One round: lambda 1 s, the twin the given ratio.
        return {
            "status": "ok",
            "lambda inference": [1.0],
            "twin inference": [inference],
            "lambda training": [1.0],
            "twin training": [training],
        }

    report = {
        "results": [
            {"model": "A", "mode": "TF graph", "seconds": seconds(0.9, 1.1)},
            {"model": "A", "mode": "JAX jit", "seconds": seconds(1.1, 1.05)},
            {"model": "A", "mode": "timm", "seconds": seconds(1.0, 1.08)},
            {"model": "B", "mode": "TF graph", "seconds": seconds(1.2, 0.99)},
            {"model": "B", "mode": "JAX jit", "seconds": {"status": "error"}},
        ]
    }
    assert lambda_vs_conv.missed_cells(report) == [
        ("A", "TF graph", "inference"),  # below 1
        ("A", "JAX jit", "training"),  # above 1, below timm's 1.08
        ("B", "TF graph", "training"),  # below 1, no timm pair
    ]
