"""The learned n-gram dictionary: its codes, its perfect hash and its checks, on tiny inputs with exact ids."""
import numpy as np
import pytest

from sentilite.runtime.recurrence import (
    EMPTY_FINGERPRINT,
    FINGERPRINT_MODULUS,
    MAX_DISPLACEMENT,
    NgramDictionary,
    dictionary_groups,
    ngram_keys,
    ngram_logit,
    ngram_rows,
    trigram_modulus,
)
from sentilite.train.ngrams import exact_ngram_weights, place_keys


def test_ngram_keys_code_bigrams_then_trigrams_of_real_ids():
    ids = np.array([[0, 3, 4, 5], [0, 0, 0, 7]])
    keys, valid = ngram_keys(ids, vocab_size=10)
    p = trigram_modulus(10)
    assert p == (2 ** 31 - 1 - 100) // 10
    # bigrams (0,3) (3,4) (4,5), then trigrams (0,3,4) (3,4,5): 100 + ((a*10 + b) % p) * 10 + c
    assert keys.tolist()[0] == [3, 34, 45, 100 + 3 * 10 + 4, 100 + 34 * 10 + 5]
    assert valid.tolist() == [[False, True, True, False, True], [False, False, False, False, False]]


def test_trigram_codes_stay_int32_at_the_largest_vocabulary():
    from sentilite.runtime.recurrence import MAX_DICTIONARY_VOCAB

    v = MAX_DICTIONARY_VOCAB
    ids = np.array([[v - 1, v - 1, v - 1]])
    keys, valid = ngram_keys(ids, v)
    assert valid.all() and keys.max() < 2 ** 31
    assert trigram_modulus(v) > 10_000  # trigrams still spread over many codes


def test_groups_are_coprime_with_slots_and_fingerprints():
    for slots in (1, 2, 97, 1000, 153_001, 251 * 4):
        groups = dictionary_groups(slots)
        assert groups >= slots / 4
        assert np.gcd(groups, slots) == 1 and np.gcd(groups, FINGERPRINT_MODULUS) == 1


def test_place_keys_gives_every_kept_key_its_own_slot():
    rng = np.random.default_rng(0)
    keys = rng.choice(10 ** 9, 980, replace=False)
    dictionary, placed = place_keys(keys, 1000)
    assert placed >= 950  # a few may lose their group's last place; never more than 3%
    found = dictionary.find(keys)
    kept = found >= 0
    assert kept.sum() >= placed
    slots = dictionary.slot(keys)
    # the placed keys' slots are distinct and carry their fingerprints
    held = slots[dictionary.fingerprints[slots] == keys % FINGERPRINT_MODULUS]
    assert len(np.unique(slots[kept])) == kept.sum()
    assert held.size == kept.sum()
    assert (dictionary.fingerprints == EMPTY_FINGERPRINT).sum() == 1000 - len(np.unique(slots[kept]))
    assert dictionary.displacements.max() < MAX_DISPLACEMENT


def test_place_keys_keeps_the_first_of_two_keys_with_one_base_slot():
    slots = 97
    groups = dictionary_groups(slots)
    # same group and same base slot: no displacement can separate them; the first (weightier) stays
    a = 5
    b = a + slots * groups  # a == b modulo both
    dictionary, placed = place_keys(np.array([a, b]), slots)
    assert placed == 1
    assert dictionary.find(np.array([a]))[0] >= 0
    assert dictionary.slot(np.array([b]))[0] == dictionary.slot(np.array([a]))[0]


def test_ngram_rows_read_found_keys_and_count_every_ngram():
    vocab, slots = 10, 7
    ids = np.array([[0, 3, 4, 5]])
    keys, _ = ngram_keys(ids, vocab)
    dictionary, placed = place_keys(np.array([keys[0, 1], keys[0, 4]]), slots)  # bigram (3,4), trigram (3,4,5)
    assert placed == 2
    rows, count = ngram_rows(ids, vocab, slots, dictionary)
    s34, s345 = dictionary.slot(np.array([keys[0, 1], keys[0, 4]]))
    # unigrams; bigrams (0,3) pad, (3,4) found, (4,5) not held (unless its fingerprint happens to match)
    missing = dictionary.find(np.array([keys[0, 2]]))[0]
    assert rows.tolist() == [[0, 3, 4, 5, 0, vocab + s34, vocab + missing if missing >= 0 else 0, 0,
                              vocab + s345]]
    assert count.tolist() == [3 + 2 + 1]
    weights = np.zeros(vocab + slots, np.float32)
    weights[[3, 4, 5]] = 1.0
    weights[vocab + s34], weights[vocab + s345] = 2.0, 4.0
    np.testing.assert_allclose(ngram_logit(ids, weights, vocab, slots, dictionary), [(3 + 2 + 4) / np.sqrt(6)])


@pytest.mark.parametrize("displacements, fingerprints, message", [
    (np.zeros(25), np.full(90, 255), r"displacements have shape \(25,\); 90 slots take \(23,\)"),
    (np.zeros(26), np.full(97, 255), r"shape \(26,\); 97 slots take \(25,\)"),
    (np.full(25, 0.5), np.full(97, 255), "displacements must be whole numbers in 0..32767"),
    (np.full(25, 40000), np.full(97, 255), "displacements must be whole numbers in 0..32767"),
    (np.zeros(25), np.full(97, 256), "fingerprints must be whole numbers in 0..255"),
    (np.zeros(25), np.full(97, np.nan), "fingerprints must be whole numbers"),
    (np.zeros(25), np.full((97, 1), 255), "one row"),
])
def test_dictionary_tables_from_a_hostile_file_are_refused(displacements, fingerprints, message):
    with pytest.raises(ValueError, match=message):
        NgramDictionary(displacements, fingerprints)


def test_exact_weights_rank_the_telling_ngrams_first():
    """Two-word phrases that decide the label outweigh the words they share with the other class."""
    pytest.importorskip("sklearn")
    vocab = 8
    good, bad = [1, 2, 3], [1, 2, 4]  # "not (2) good (3)" vs "not bad (4)" style rows
    rows = np.array([good] * 20 + [bad] * 20)
    labels = np.array([1] * 20 + [0] * 20, np.float32)
    codes, weights = exact_ngram_weights(rows, labels, None, vocab, c=10.0)
    assert codes.min() >= 0  # unigrams are not returned
    by_code = dict(zip(codes.tolist(), weights.tolist()))
    assert by_code[2 * vocab + 3] > 0 > by_code[2 * vocab + 4]
    assert abs(by_code[1 * vocab + 2]) < 1e-3  # (1, 2) is in every row: no evidence either way
