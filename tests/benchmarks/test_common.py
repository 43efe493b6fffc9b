"""benchmarks.common's alternating timer and its worker launcher."""

from benchmarks import common


def test_interleaved_timings_reverse_the_order_every_other_round():
    calls = []
    contenders = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    timings = common.interleaved_timings(contenders, repeats=3, warmup=1)
    # The warm-up round, then rounds in order, reversed, in order.
    assert calls == list("abc" + "abc" + "cba" + "abc")
    assert {name: len(seconds) for name, seconds in timings.items()} == {
        "a": 3,
        "b": 3,
        "c": 3,
    }
    assert all(s >= 0 for seconds in timings.values() for s in seconds)


def test_run_backend_worker_passes_the_arguments_and_the_backend(monkeypatch):
    seen = {}

    def run_worker(module, arguments, environment=None):
        seen.update(module=module, arguments=arguments, environment=environment)
        return {"status": "ok"}

    monkeypatch.setattr(common, "run_worker", run_worker)
    assert common.run_backend_worker("benchmarks.x", "jax", ["a", 2]) == {
        "status": "ok"
    }
    assert seen == {
        "module": "benchmarks.x",
        "arguments": ["--worker", '["a", 2]'],
        "environment": {"KERAS_BACKEND": "jax"},
    }
