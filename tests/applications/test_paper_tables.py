"""Parameter counts of Tables 3, 5, 11, 12 and 13 of the paper."""

import numpy as np
import pytest

from lambda_keras.applications import LambdaResNet
from lambda_keras.applications.paper_tables import INCONSISTENT_ROWS
from lambda_keras.applications.paper_tables import PARAMETER_COUNTS


def trainable_millions(arguments):
    arguments = dict(arguments)
    size = arguments.pop("input_size", 224)
    model = LambdaResNet(
        arguments.pop("depths"), input_shape=(size, size, 3), **arguments
    )
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights) / 1e6


def rows(tables):
    return [
        pytest.param(
            paper,
            arguments,
            id=f"table{table}: {row}",
            marks=[pytest.mark.slow] if table in ("5", "13") else [],
        )
        for table, row, paper, arguments in PARAMETER_COUNTS
        if table in tables and (table, row) not in INCONSISTENT_ROWS
    ]


@pytest.mark.parametrize("paper, arguments", rows({"3", "11", "12", "5", "13"}))
def test_parameter_count_matches_the_paper(paper, arguments):
    ours = trainable_millions(arguments)
    assert abs(ours - paper) <= 0.015 * paper, f"ours {ours:.2f}M, paper {paper}M"


def test_every_table_is_covered():
    tables = {table for table, *_ in PARAMETER_COUNTS}
    assert tables == {"3", "5", "11", "12", "13"}
    assert sum(table == "11" for table, *_ in PARAMETER_COUNTS) == 15
    assert sum(table == "12" for table, *_ in PARAMETER_COUNTS) == 8
    assert len(INCONSISTENT_ROWS) == 2
