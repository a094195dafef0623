"""The accuracy-change limit of an exported file: the tolerance, widened only by what a small test set's flips allow."""
from __future__ import annotations

import math

import pytest

from sentilite.export.errors import ExportValidationError
from sentilite.export.validate import Tolerance, accuracy_change_limit, check_accuracy_change, compare

TOLERANCE = Tolerance(max_abs_diff=None, min_agreement=0.99, max_accuracy_change=0.003)


def test_a_large_test_set_keeps_the_tolerance():
    # IMDB: 125 of 25,000 reviews disagree (99.5%): two standard deviations are 0.09 points
    assert accuracy_change_limit(TOLERANCE, 25_000, 125) == 0.003


def test_a_small_test_set_allows_two_standard_deviations_of_its_flips():
    assert accuracy_change_limit(TOLERANCE, 872, 5) == pytest.approx(2 * math.sqrt(5) / 872)
    assert accuracy_change_limit(TOLERANCE, 872, 0) == 0.003
    assert accuracy_change_limit(Tolerance(None, 0.999), 872, 5) is None


def test_a_change_past_the_limit_is_refused_with_the_numbers():
    # 5 flips on 872 texts allow 0.51 points: 0.46 points (4 texts) pass, 0.57 points (5 texts, all lost) do not
    check_accuracy_change("m.int8.tflite", "int8", 0.85, 0.85 - 4 / 872, 872, TOLERANCE, 5)
    with pytest.raises(ExportValidationError, match=r"0\.57 points below .* on 872 test texts "
                                                    r"\(tolerance 0\.51 points either way; 5 texts disagree\)"):
        check_accuracy_change("m.int8.tflite", "int8", 0.85, 0.85 - 5 / 872, 872, TOLERANCE, 5)
    with pytest.raises(ExportValidationError, match=r"tolerance 0\.30 points either way\)"):
        check_accuracy_change("m.int8.tflite", "int8", 0.85, 0.845, 25_000, TOLERANCE, 100)


def test_compare_takes_the_top_label_of_n_probabilities():
    reference = [[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4]]
    file = [[0.6, 0.3, 0.1], [0.1, 0.4, 0.5], [0.3, 0.3, 0.4]]
    stats = compare(reference, file)
    assert stats["n"] == 3
    assert stats["agreement"] == pytest.approx(2 / 3)
    assert stats["max_abs_diff"] == pytest.approx(0.1)
    # two labels: one probability a row, p >= 0.5 is labels[1]
    assert compare([0.2, 0.5, 0.9], [0.3, 0.49, 0.9]) == {"n": 3, "max_abs_diff": pytest.approx(0.1),
                                                           "agreement": pytest.approx(2 / 3)}


def test_validation_and_training_take_a_label_by_the_runtimes_rule():
    import numpy as np

    from sentilite.export.validate import top_label_accuracy, top_labels
    from sentilite.train.fit import top_label_accuracy as training_accuracy

    # two labels tied at 0.5 (a logit of 0) go to the second label, as the runtime's predict says; N labels: argmax
    assert top_labels(np.array([0.5, 0.49, 0.51], np.float32)).tolist() == [1, 0, 1]
    assert top_labels(np.array([[0.5], [0.2]], np.float32)).tolist() == [1, 0]
    assert top_labels(np.array([[0.2, 0.5, 0.3], [0.4, 0.3, 0.3]], np.float32)).tolist() == [1, 0]
    assert top_label_accuracy(np.array([0.5, 0.2], np.float32), np.array([1, 1])) == 0.5
    assert training_accuracy(np.array([0.0, -0.1, 2.0]), np.array([1, 0, 0]), logits=True) == 2 / 3
    assert training_accuracy(np.array([[0.1, 0.2, -1.0], [3.0, 0.0, 0.0]]), np.array([1, 1]), logits=True) == 0.5
