"""The bench times a cell's engines in turns: every engine sees every review once, in blocks, in a turning order."""
import numpy as np
import pytest

from sentilite.bench.bench import BenchConfig, one_text_engines, time_in_turns
from sentilite.bench.timing import interleaved_latencies
from sentilite.shared.errors import ConfigError


def test_every_engine_answers_every_text_once_block_by_block_in_turning_order():
    calls = []
    engines = {name: (lambda text, name=name: calls.append((name, text))) for name in ("keras", "a.onnx", "b.tflite")}
    texts = [f"review {i}" for i in range(10)]
    out = interleaved_latencies(engines, texts, warm_texts=["warm"], rounds=3)

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
    out = interleaved_latencies({"x": seen.append}, ["a", "b"], warm_texts=[], rounds=5)
    assert seen == ["a", "b"] and out["x"].shape == (2,)


class _RecordingFile:
    """A loaded file as the bench calls it: predict_proba on a list of one text."""

    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def predict_proba(self, texts):
        assert isinstance(texts, list) and len(texts) == 1
        self.calls.append((self.name, texts[0]))
        return np.array([[0.5, 0.5]], dtype=np.float32)


class _RecordingPeer:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def predict_one(self, text):
        self.calls.append((self.name, text))


def test_peers_are_timed_in_the_same_turns_as_keras_and_the_files():
    calls = []
    engines = one_text_engines(lambda t: calls.append(("keras", t)),
                               [(n, _RecordingFile(n, calls)) for n in ("model.fp32.onnx", "model.int8.tflite")],
                               [_RecordingPeer(n, calls) for n in ("fasttext", "tfidf")])
    assert list(engines) == ["keras", "model.fp32.onnx", "model.int8.tflite", "fasttext", "tfidf"]
    texts = [f"review {i}" for i in range(8)]
    short = [f"short {i}" for i in range(8)]
    full, brief = time_in_turns(engines, texts, short, ["warm"], ["warm short"], rounds=4)

    assert set(full) == set(brief) == set(engines)
    assert all(ms.shape == (8,) for ms in [*full.values(), *brief.values()])
    timed = [(n, t) for n, t in calls if not t.startswith("warm")]
    # every full review on every engine before any short text, then the short texts, each set in the same turns
    assert all(t.startswith("review") for _, t in timed[:40]) and all(t.startswith("short") for _, t in timed[40:])
    names = list(engines)
    for texts_of_set, part in ((texts, timed[:40]), (short, timed[40:])):
        expected = []
        for r in range(4):  # 8 texts in 4 blocks of 2; the order of the five engines turns by one each round
            for name in names[r:] + names[:r]:
                expected += [(name, t) for t in texts_of_set[2 * r: 2 * r + 2]]
        assert part == expected


@pytest.mark.parametrize("field, value", [("latency_rounds", 0), ("latency_reviews", 0), ("warmup_reviews", -1),
                                          ("throughput_batch", 2.5), ("cold_start_runs", True),
                                          ("short_text_words", 0), ("peer_seed", -1)])
def test_bench_config_refuses_counts_it_cannot_run(field, value):
    with pytest.raises(ConfigError, match=f"BenchConfig.{field} must be an integer"):
        BenchConfig(**{field: value})


@pytest.mark.parametrize("changes, message", [
    ({"peers": ("fasttext", "vader")}, r"unknown peer\(s\) \['vader'\]"),
    ({"fasttext_grid": {"epochs": (5,)}}, r"unknown setting\(s\) \['epochs'\]"),
    ({"fasttext_grid": {"epoch": ()}}, "no value for epoch"),
    ({"fasttext_grid": {"epoch": (5.5,)}}, "epoch must be a whole number above 0"),
    ({"fasttext_grid": {"lr": (0,)}}, "lr must be a number above 0"),
])
def test_bench_config_refuses_unknown_peers_and_bad_fasttext_grids(changes, message):
    with pytest.raises(ConfigError, match=message):
        BenchConfig(**changes)


def test_a_fasttext_grid_is_not_checked_when_fasttext_is_not_a_peer():
    assert BenchConfig(peers=("tfidf",), fasttext_grid={}).peers == ("tfidf",)
