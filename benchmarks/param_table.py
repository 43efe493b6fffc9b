"""Our parameter and FLOP counts beside the paper's tables.

    python benchmarks/param_table.py

Builds every configuration of `lambda_keras.applications.paper_tables`
(Tables 3, 5, 11, 12, 13 for parameters; 6, 8, 9 for FLOPS) and the seven
named LambdaResNets at their default size, prints Markdown tables and writes
benchmarks/results/param_table.json. Parameters are trainable weights (batch
norm statistics excluded); GFLOPS are twice the multiply-adds counted by
`lambda_keras.applications.flops.count_multiply_adds`, as in the paper.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from lambda_keras import applications  # noqa: E402
from lambda_keras.applications.flops import count_multiply_adds  # noqa: E402
from lambda_keras.applications.paper_tables import FLOP_COUNTS  # noqa: E402
from lambda_keras.applications.paper_tables import INCONSISTENT_ROWS  # noqa: E402
from lambda_keras.applications.paper_tables import PARAMETER_COUNTS  # noqa: E402
from lambda_keras.applications.variants import VARIANTS  # noqa: E402


def trainable_parameters(model):
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def build(arguments):
    arguments = dict(arguments)
    size = arguments.pop("input_size", 224)
    depths = arguments.pop("depths")
    return applications.LambdaResNet(depths, input_shape=(size, size, 3), **arguments)


def compare(rows, measure, unit):
    results = []
    print(f"| table | configuration | paper ({unit}) | ours ({unit}) | difference |")
    print("|---|---|---|---|---|")
    for table, row, paper, arguments in rows:
        ours = measure(build(arguments))
        difference = 100 * (ours - paper) / paper
        note = (
            " (inconsistent row, see README)"
            if (table, row) in INCONSISTENT_ROWS
            else ""
        )
        print(
            f"| {table} | {row} | {paper:.1f} | {ours:.2f} "
            f"| {difference:+.1f}%{note} |",
            flush=True,
        )
        results.append(
            {
                "table": table,
                "row": row,
                "paper": paper,
                "ours": ours,
                "difference_percent": difference,
            }
        )
    return results


def main():
    print("Parameters (millions)\n")
    parameters = compare(PARAMETER_COUNTS, lambda m: trainable_parameters(m) / 1e6, "M")
    print("\nFLOPS (2 x multiply-adds, billions)\n")
    flops = compare(FLOP_COUNTS, lambda m: 2 * count_multiply_adds(m) / 1e9, "B")

    print("\nThe LambdaResNet family (hybrid, default size, 1000 classes)\n")
    print("| model | blocks | lambda layers in c4 | image size | parameters | GFLOPS |")
    print("|---|---|---|---|---|---|")
    family = []
    paper_models = [
        v
        for v in VARIANTS
        if v.architecture == "hybrid" and not v.options.get("width_multiplier")
    ]
    for variant in paper_models:
        blocks, size, c4 = variant.depths, variant.default_size, variant.placement[2]
        model = applications.MODELS[variant.name]()
        params = trainable_parameters(model) / 1e6
        gflops = 2 * count_multiply_adds(model) / 1e9
        print(
            f"| {variant.name} | {blocks} | {c4} | {size} | {params:.1f}M | "
            f"{gflops:.1f} |",
            flush=True,
        )
        family.append(
            {
                "model": variant.name,
                "blocks": blocks,
                "c4_lambda": c4,
                "image_size": size,
                "parameters_millions": params,
                "gflops": gflops,
            }
        )

    output = os.path.join(os.path.dirname(__file__), "results", "param_table.json")
    with open(output, "w", encoding="utf-8") as file:
        json.dump(
            {
                "command": "python benchmarks/param_table.py",
                "parameters": parameters,
                "flops": flops,
                "family": family,
            },
            file,
            indent=2,
        )
    print(f"\nwrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
