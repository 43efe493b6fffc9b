"""Parameter counts reported in the paper, with the configurations that
reproduce them (ResNet-50 at 224x224 with 1000 classes unless noted).

Each entry: (table, row, paper millions of parameters, `LambdaResNet`
arguments). `benchmarks/param_table.py` prints our counts beside them and
`tests/applications/test_paper_tables.py` checks Tables 3, 11 and 12.
"""

RESNET50 = (3, 4, 6, 3)
RESNET101 = (3, 4, 23, 3)
RESNET152 = (3, 8, 36, 3)
RESNET200 = (3, 24, 36, 3)

_VANILLA = dict(depths=RESNET50, architecture="vanilla")
_ALL_LAMBDA = dict(_VANILLA, placement="L,L,L,L")
# With |u| > 1 the paper uses a 7x7 scope (Appendix D).
_INTRA_DEPTH = dict(_ALL_LAMBDA, scope=7)

PARAMETER_COUNTS = [
    ("3", "Conv (ResNet-50)", 25.6, dict(_VANILLA, placement="C,C,C,C")),
    ("3", "Lambda layer", 15.0, _ALL_LAMBDA),
    ("3", "Lambda layer (|u|=4)", 16.0, dict(_INTRA_DEPTH, dim_u=4)),
]
for _k, _h, _u, _params in [
    (8, 2, 1, 14.8),
    (8, 16, 1, 15.6),
    (2, 4, 1, 14.7),
    (4, 4, 1, 14.7),
    (8, 4, 1, 14.8),
    (16, 4, 1, 15.0),
    (32, 4, 1, 15.4),
    (2, 8, 1, 14.7),
    (4, 8, 1, 14.7),
    (8, 8, 1, 14.7),
    (16, 8, 1, 15.1),
    (32, 8, 1, 15.7),
    (8, 8, 4, 15.3),
    (8, 8, 8, 16.0),
    (16, 4, 4, 16.0),
]:
    PARAMETER_COUNTS.append(
        (
            "11",
            f"|k|={_k} |h|={_h} |u|={_u}",
            _params,
            dict(_INTRA_DEPTH if _u > 1 else _ALL_LAMBDA, dim_k=_k, heads=_h, dim_u=_u),
        )
    )
for _placement, _params in [
    ("C,C,C,C", 25.6),
    ("L,C,C,C", 25.5),
    ("L,L,C,C", 25.0),
    ("L,L,L,C", 21.7),
    ("L,L,L,L", 15.0),
    ("C,L,L,L", 15.1),
    ("C,C,L,L", 15.4),
    ("C,C,C,L", 18.8),
]:
    PARAMETER_COUNTS.append(
        (
            "12",
            _placement.replace(",", " -> "),
            _params,
            dict(_VANILLA, placement=_placement),
        )
    )

# Tables 5 and 13: the hybrid models of the 350-epoch setup.
PARAMETER_COUNTS += [
    (
        "5",
        "LambdaResNet152 (320, c4 and c5 lambda)",
        35.0,
        dict(depths=RESNET152, placement="C,C,L,L", input_size=320),
    ),
    (
        "5",
        "LambdaResNet200 (320, c4 and c5 lambda)",
        42.0,
        dict(depths=RESNET200, placement="C,C,L,L", input_size=320),
    ),
    (
        "13",
        "ResNet101 baseline",
        44.6,
        dict(depths=RESNET101, architecture="vanilla", placement="C,C,C,C"),
    ),
    ("13", "ResNet101 + SE", 63.6, dict(depths=RESNET101, placement="C,C,C,C")),
    ("13", "ResNet101 + 3 lambda", 36.9, dict(depths=RESNET101, placement="C,C,3,L")),
    (
        "13",
        "ResNet101 + all lambdas",
        26.0,
        dict(depths=RESNET101, placement="C,C,L,L"),
    ),
    (
        "13",
        "ResNet152 baseline (256)",
        60.2,
        dict(
            depths=RESNET152,
            architecture="vanilla",
            placement="C,C,C,C",
            input_size=256,
        ),
    ),
    (
        "13",
        "ResNet152 + SE (256)",
        86.6,
        dict(depths=RESNET152, placement="C,C,C,C", input_size=256),
    ),
    (
        "13",
        "ResNet152 + 6 lambdas (256)",
        51.4,
        dict(depths=RESNET152, placement="C,C,6,L", input_size=256),
    ),
    (
        "13",
        "ResNet152 + all lambdas (256)",
        35.1,
        dict(depths=RESNET152, placement="C,C,L,L", input_size=256),
    ),
]

# Rows of Table 11 whose counts contradict the table's other rows: every
# other row follows from |h| and |k| (more heads: more query weights, fewer
# value weights), and these two do not (see the README).
INCONSISTENT_ROWS = {("11", "|k|=8 |h|=2 |u|=1"), ("11", "|k|=8 |h|=16 |u|=1")}


# Paper GFLOPS (twice the multiply-adds), ResNet-50 at 224x224 unless noted.
FLOP_COUNTS = [
    (
        "6",
        "LambdaResNet-270 (256, 7x7 scope, c4 and c5 lambda)",
        34.0,
        dict(
            depths=(4, 29, 53, 4),
            placement="C,C,L,L",
            scope=7,
            input_size=256,
            stochastic_depth_rate=0.2,
        ),
    ),
    ("8", "content only", 5.0, dict(_ALL_LAMBDA, use_position=False)),
    ("8", "position only", 11.9, dict(_ALL_LAMBDA, use_content=False)),
    ("8", "content and position", 12.0, _ALL_LAMBDA),
]
for _scope, _flops in [
    (3, 5.7),
    (7, 6.1),
    (15, 7.8),
    (23, 10.0),
    (31, 12.4),
    (None, 19.4),
]:
    FLOP_COUNTS.append(
        (
            "9",
            f"scope {'global' if _scope is None else f'{_scope}x{_scope}'}",
            _flops,
            dict(_ALL_LAMBDA, scope=_scope),
        )
    )
