"""The bench times a cell's engines in turns: every engine sees every review once, in blocks, in a turning order."""
import numpy as np
import pytest

from sentilite.bench.bench import BenchConfig, _interleaved_latencies
from sentilite.shared.errors import ConfigError


def test_every_engine_answers_every_text_once_block_by_block_in_turning_order():
    calls = []
    engines = {name: (lambda text, name=name: calls.append((name, text))) for name in ("keras", "a.onnx", "b.tflite")}
    texts = [f"review {i}" for i in range(10)]
    out = _interleaved_latencies(engines, texts, warm_texts=["warm"], rounds=3)

    assert sorted(out) == sorted(engines)
    for name, ms in out.items():
        assert ms.shape == (10,) and np.all(ms >= 0)
        assert [t for n, t in calls if n == name and t != "warm"] == texts  # each text once, in order
    timed = [(n, t) for n, t in calls if t != "warm"]
    blocks = [texts[0:3], texts[3:6], texts[6:10]]  # 10 texts in 3 blocks
    expected, order = [], ["keras", "a.onnx", "b.tflite"]
    for r, block in enumerate(blocks):
        for name in order[r:] + order[:r]:  # the order turns by one each round
            expected += [(name, t) for t in block]
    assert timed == expected
    # each engine's turn starts with the warm texts, untimed
    assert calls[0] == ("keras", "warm") and calls[1] == ("keras", "review 0")
    assert sum(1 for _, t in calls if t == "warm") == 3 * 3


def test_more_rounds_than_texts_gives_one_text_per_round():
    seen = []
    out = _interleaved_latencies({"x": seen.append}, ["a", "b"], warm_texts=[], rounds=5)
    assert seen == ["a", "b"] and out["x"].shape == (2,)


@pytest.mark.parametrize("field, value", [("latency_rounds", 0), ("latency_reviews", 0), ("warmup_reviews", -1),
                                          ("throughput_batch", 2.5), ("cold_start_runs", True)])
def test_bench_config_refuses_counts_it_cannot_run(field, value):
    with pytest.raises(ConfigError, match=f"BenchConfig.{field} must be an integer"):
        BenchConfig(**{field: value})
