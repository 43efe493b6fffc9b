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
