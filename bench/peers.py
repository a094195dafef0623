"""The peers: what a user would pick instead of a sentilite file, trained in the bench on the same reviews.

Keras is where a model came from, not what a user would use instead. The
peers are fastText (supervised, word bigrams, its settings chosen on the
validation reviews) and the TF-IDF reference of ``train.baseline``. Each is
fitted on the training reviews of the first benched package, and each is
called as its users call it: ``model.predict(text)`` for fastText, after the
tokenizing of fastText's own tutorial in Python; ``pipeline.predict_proba([text])``
for the TF-IDF pipeline, whose vectorizer reads the words of the one tokenizer.
"""
from __future__ import annotations

import importlib.util
import itertools
import pickle
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from sentilite.runtime.tokenizer import CJK_CHARACTER_RANGES, HTML_BREAK
from sentilite.shared.errors import ConfigError, MissingExtraError

PEERS = ("fasttext", "tfidf")
# fastText's settings are chosen on the validation reviews among every combination of these. With
# thread=1 a fit is deterministic (more threads race on the weights) and takes 10-30 s on 25,000 reviews.
FASTTEXT_GRID: dict[str, tuple] = {"epoch": (5, 10), "lr": (0.25, 1.0), "wordNgrams": (2, 3), "dim": (10,)}
_FASTTEXT_SETTINGS = {"epoch": int, "lr": float, "wordNgrams": int, "dim": int}
_LABEL = "__label__"

# The preprocessing of fastText's supervised tutorial (https://fasttext.cc/docs/en/supervised-tutorial.html),
#   sed -e "s/\([.\!?,'/()]\)/ \1 /g" | tr "[:upper:]" "[:lower:]"
# punctuation split off as words of its own, lower case; IMDB's <br /> line breaks dropped first, as every
# model here drops them. fastText splits the rest on whitespace; predict refuses a newline.
FASTTEXT_TOKENIZING = ("lower-cased, the punctuation . ! ? , ' / ( ) split off as words of its own (fastText's "
                       "tutorial), <br /> dropped; fastText splits on whitespace")
_PUNCTUATION = re.compile(r"([.!?,'/()])")
_NEWLINES = str.maketrans("\n\r", "  ")


def fasttext_text(text: str) -> str:
    """One text as fastText's users prepare it for ``train_supervised`` and ``predict``."""
    return _PUNCTUATION.sub(r" \1 ", HTML_BREAK.sub(" ", text)).lower().translate(_NEWLINES)


_CJK_CHARACTER = re.compile("([" + "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in CJK_CHARACTER_RANGES) + "])")


def fasttext_cjk_text(text: str) -> str:
    """fasttext_text with each Han, Hiragana or Katakana character a word, as the model's "cjk" rule reads them.

    fastText splits on whitespace only: an unsegmented Chinese review would be
    one "word" per run between punctuation.
    """
    return _CJK_CHARACTER.sub(r" \1 ", fasttext_text(text))


def fasttext_preparer(character_words: str = "none") -> Callable[[str], str]:
    return fasttext_cjk_text if character_words == "cjk" else fasttext_text


def require_fasttext() -> None:
    """MissingExtraError in one line when fastText is not installed: the bench trains it as a peer."""
    if importlib.util.find_spec("fasttext") is None:
        raise MissingExtraError(
            "`sentilite bench` trains fastText as a peer and fasttext is not installed here: install the bench "
            "extra, pip install -e '.[bench]' from the clone (fasttext-numpy2), or leave fastText out with "
            "--peers tfidf")


def check_peers(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise ConfigError(f"unknown peer(s) {unknown}; choose among {list(PEERS)}")
    return tuple(dict.fromkeys(names))


def fasttext_grid_points(grid: Mapping[str, Sequence]) -> list[dict]:
    """Every combination of a grid's values, in the grid's order; ConfigError for a key fastText lacks here."""
    unknown = sorted(set(grid) - set(_FASTTEXT_SETTINGS))
    if unknown or not grid:
        raise ConfigError(f"fastText grid: unknown setting(s) {unknown}; it takes {sorted(_FASTTEXT_SETTINGS)}")
    for key, values in grid.items():
        if not values:
            raise ConfigError(f"fastText grid: no value for {key}")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (
                    _FASTTEXT_SETTINGS[key] is int and value != int(value)):
                kind = "a whole number" if _FASTTEXT_SETTINGS[key] is int else "a number"
                raise ConfigError(f"fastText grid: {key} must be {kind} above 0, got {value!r}")
    keys = list(grid)
    return [{k: _FASTTEXT_SETTINGS[k](v) for k, v in zip(keys, values)}
            for values in itertools.product(*(grid[k] for k in keys))]


class Peer:
    """A peer as its users call it; ``encode_one`` then ``engine`` is ``predict_one`` in two parts.

    ``encode_one`` is its tokenizing in Python, ``engine`` the rest of the
    call on what that gave; the bench times them apart, as it does the
    runtime's tokenizing and engine.
    """

    name = "peer"
    call = ""  # how its users call it on one text
    distributions: tuple[str, ...] = ()
    description = ""
    tokenizing = ""
    details: dict

    def predict_one(self, text: str):
        raise NotImplementedError

    def encode_one(self, text: str):
        raise NotImplementedError

    def engine(self, encoded):
        raise NotImplementedError

    def predict_batch(self, texts: list[str]):
        raise NotImplementedError

    def positive(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) of each text."""
        raise NotImplementedError

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, N) probabilities of each text, in label order (label i is the class index i it was fitted on)."""
        raise NotImplementedError

    def save(self, folder: Path) -> Path:
        raise NotImplementedError

    cold_start_code = ""  # a script: argv[1] is the saved file; prints seconds and peak RSS as _COLD_RUNTIME does


class FastTextPeer(Peer):
    name = "fasttext"
    call = "model.predict(text)"
    distributions = ("fasttext-numpy2",)
    tokenizing = FASTTEXT_TOKENIZING
    cold_start_code = """
import sys, time
start = time.perf_counter()
import fasttext
model = fasttext.load_model(sys.argv[1])
model.predict("a wonderful film .")
print(time.perf_counter() - start, PEAK_RSS)
"""

    def __init__(self, model, details: dict):
        self.model = model
        self.details = details
        self.prepare = fasttext_preparer(details.get("character_words", "none"))
        s = details["settings"]
        self.description = (f"fastText supervised, {s['wordNgrams']}-grams of words, dim {s['dim']}, "
                            f"{s['epoch']} epochs, lr {s['lr']:g}")

    def predict_one(self, text: str):
        return self.model.predict(self.prepare(text))

    def encode_one(self, text: str) -> str:
        return self.prepare(text)

    def engine(self, encoded: str):
        return self.model.predict(encoded)

    def predict_batch(self, texts: list[str]):
        return self.model.predict([self.prepare(t) for t in texts])

    def positive(self, texts: Sequence[str]) -> np.ndarray:
        labels, probabilities = self.model.predict([self.prepare(t) for t in texts], k=2)
        return np.array([dict(zip(names, p)).get(f"{_LABEL}1", 0.0) for names, p in zip(labels, probabilities)])

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        classes = int(self.details.get("classes", 2))
        labels, probabilities = self.model.predict([self.prepare(t) for t in texts], k=classes)
        out = np.zeros((len(labels), classes), dtype=np.float64)
        for row, (names, p) in enumerate(zip(labels, probabilities)):
            for name, probability in zip(names, p):
                out[row, int(name[len(_LABEL):])] = probability
        return out

    def save(self, folder: Path) -> Path:
        path = Path(folder) / "fasttext.bin"
        self.model.save_model(str(path))
        return path


def _write_fasttext_input(path: Path, reviews, seed: int, prepare: Callable[[str], str] = fasttext_text) -> Path:
    """Reviews (train.data.Reviews) in fastText's input format, in a seeded random order.

    fastText reads its file in order and shuffles nothing, and the IMDB
    archive holds all negative reviews before the positive ones.
    """
    with open(path, "w", encoding="utf-8") as out:
        for i in np.random.default_rng(seed).permutation(len(reviews)):
            out.write(f"{_LABEL}{int(reviews.labels[i])} {prepare(reviews.texts[i])}\n")
    return path


def train_fasttext(fit, validation, train, grid: Mapping[str, Sequence], seed: int, workdir: Path,
                   log: Callable[[str], None] = lambda m: None, classes: int = 2,
                   character_words: str = "none") -> FastTextPeer:
    """Settings chosen on ``validation`` (each point fitted on ``fit``), then fitted on ``train`` with them.

    All three are train.data.Reviews: ``train`` holds the fit and validation
    reviews. Ties go to the grid's first point. One thread and a fixed seed
    make every fit the same each run. ``classes``: the labels (0..classes-1);
    with more than two, the validation accuracy is that of the top label.
    ``character_words``: the model's word rule; "cjk" spaces out each Han,
    Hiragana or Katakana character (``fasttext_cjk_text``).
    """
    require_fasttext()
    import fasttext

    from sentilite.runtime.metrics import predicted_classes
    from sentilite.train.evaluate import accuracy

    def validation_accuracy(peer: FastTextPeer) -> float:
        if classes == 2:
            return accuracy(peer.positive(validation.texts), validation.labels)
        return float(np.mean(predicted_classes(peer.probabilities(validation.texts)) == validation.labels))

    points = fasttext_grid_points(grid)
    prepare = fasttext_preparer(character_words)
    extra = {} if character_words == "none" else {"character_words": character_words}
    fit_file = _write_fasttext_input(Path(workdir) / "fasttext.fit.txt", fit, seed, prepare)
    results = []
    started = time.perf_counter()
    for settings in points:
        t0 = time.perf_counter()
        try:
            model = fasttext.train_supervised(str(fit_file), thread=1, seed=seed, verbose=0, **settings)
        except RuntimeError as exc:  # "Encountered NaN": a learning rate too high for these texts diverges
            results.append({"settings": settings, "validation_accuracy": None, "error": str(exc),
                            "fit_seconds": round(time.perf_counter() - t0, 1)})
            log(f"peer fasttext {settings}: failed ({exc}), left out of the choice")
            continue
        score = validation_accuracy(FastTextPeer(model, {"settings": settings, "classes": classes, **extra}))
        results.append({"settings": settings, "validation_accuracy": round(score, 6),
                        "fit_seconds": round(time.perf_counter() - t0, 1)})
        log(f"peer fasttext {settings}: validation accuracy {score:.4f} ({results[-1]['fit_seconds']:.0f} s)")
    fitted = [r for r in results if r["validation_accuracy"] is not None]
    if not fitted:
        raise ConfigError(f"fastText: every point of the grid failed to fit ({results[0]['error']})")
    best = max(fitted, key=lambda r: r["validation_accuracy"])  # max keeps the first of equals
    train_file = _write_fasttext_input(Path(workdir) / "fasttext.train.txt", train, seed, prepare)
    t0 = time.perf_counter()
    model = fasttext.train_supervised(str(train_file), thread=1, seed=seed, verbose=0, **best["settings"])
    details = {"settings": best["settings"], "seed": seed, "threads": 1, "grid": {k: list(v) for k, v in grid.items()},
               "validation": results, "fit_reviews": len(fit), "validation_reviews": len(validation),
               "train_reviews": len(train), "train_seconds": round(time.perf_counter() - t0, 1),
               "tuning_seconds": round(t0 - started, 1), "version": _version("fasttext-numpy2")}
    if classes != 2:
        details["classes"] = classes
    details.update(extra)
    log(f"peer fasttext: {best['settings']} fitted on {len(train):,} reviews in {details['train_seconds']:.0f} s")
    return FastTextPeer(model, details)


class TfidfPeer(Peer):
    name = "tfidf"
    call = "pipeline.predict_proba([text])"
    distributions = ("scikit-learn",)
    tokenizing = "the words of the one tokenizer (runtime.tokenizer.split_words), and their bigrams"
    cold_start_code = """
import pickle, sys, time
start = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    pipeline = pickle.load(f)
pipeline.predict_proba(["A wonderful film."])
print(time.perf_counter() - start, PEAK_RSS)
"""

    def __init__(self, pipeline, details: dict):
        self.pipeline = pipeline
        self.vectorizer, self.regression = pipeline[0], pipeline[-1]
        self.details = details
        self.description = (f"TF-IDF of word unigrams and bigrams (sublinear tf, min_df {details['min_df']}), "
                            f"logistic regression (C={details['c']:g})")
        if details.get("character_words", "none") != "none":
            self.description += f"; words: tokenizer rule character_words={details['character_words']}"

    def predict_one(self, text: str):
        return self.pipeline.predict_proba([text])

    def encode_one(self, text: str):
        return self.vectorizer.transform([text])

    def engine(self, encoded):
        return self.regression.predict_proba(encoded)

    def predict_batch(self, texts: list[str]):
        return self.pipeline.predict_proba(texts)

    def positive(self, texts: Sequence[str]) -> np.ndarray:
        return self.pipeline.predict_proba(list(texts))[:, 1]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        from sentilite.train.baseline import reference_probabilities

        return reference_probabilities(self.vectorizer, self.regression, list(texts),
                                       int(self.details.get("classes", 2)))

    def save(self, folder: Path) -> Path:
        path = Path(folder) / "tfidf.pickle"
        path.write_bytes(pickle.dumps(self.pipeline, protocol=pickle.HIGHEST_PROTOCOL))
        return path


def tfidf_pipeline(c: float, min_df: int, classes: int = 2, character_words: str = "none"):
    """train.baseline's model as one scikit-learn pipeline: text in, predict_proba out."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sentilite.train.baseline import analyzer_for, regression_solver

    # The same vectorizer and regression as train.baseline.fit_reference.
    return make_pipeline(TfidfVectorizer(analyzer=analyzer_for(character_words), min_df=min_df, sublinear_tf=True),
                         LogisticRegression(C=c, solver=regression_solver(classes), max_iter=5000))


def baseline_settings() -> dict:
    """train.baseline.train_baseline's own defaults: the peer is the reference its metrics.json reports."""
    import inspect

    from sentilite.train.baseline import train_baseline

    parameters = inspect.signature(train_baseline).parameters
    return {"c": parameters["c"].default, "min_df": parameters["min_df"].default}


def train_tfidf(reviews, log: Callable[[str], None] = lambda m: None, classes: int = 2,
                character_words: str = "none") -> TfidfPeer:
    """The TF-IDF reference fitted on these reviews (train.data.Reviews), with train.baseline's settings.

    ``classes`` and ``character_words``: the labels and the model's word rule, as train.baseline reads them.
    """
    settings = baseline_settings()
    t0 = time.perf_counter()
    pipeline = tfidf_pipeline(**settings, classes=classes, character_words=character_words).fit(
        reviews.texts, reviews.labels)
    details = {**settings, "features": int(len(pipeline[0].vocabulary_)), "train_reviews": len(reviews),
               "train_seconds": round(time.perf_counter() - t0, 1), "version": _version("scikit-learn")}
    if classes != 2 or character_words != "none":
        details.update(classes=classes, character_words=character_words)
    log(f"peer tfidf: {details['features']:,} features, fitted on {len(reviews):,} reviews "
        f"in {details['train_seconds']:.0f} s")
    return TfidfPeer(pipeline, details)


def _version(distribution: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"
