import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_v1_labeled.tar.gz"


def imdb_source() -> Path | None:
    """The real IMDB archive: $IMDB_DATA, else the shared copy beside the repository."""
    env = os.environ.get("IMDB_DATA")
    if env and Path(env).exists():
        return Path(env)
    return SHARED_ARCHIVE if SHARED_ARCHIVE.exists() else None


@pytest.fixture(scope="session")
def imdb_path() -> Path:
    path = imdb_source()
    if path is None:
        pytest.skip("IMDB data not available: set IMDB_DATA to the aclImdb folder or .tar.gz")
    return path


@pytest.fixture(scope="session")
def imdb(imdb_path):
    from sentilite.train.data import load_imdb

    return load_imdb(imdb_path, progress=False)


# Evaluations inside tests use a seeded, class-balanced subset of the test reviews, the same one
# the export fixture evaluates every file on (train.data.subset(test, 2000, seed=0)).
TEST_REVIEWS = 2000


def small_config(cell, input="ids", subset=3000, epochs=2, ngrams=True, **tokenizer):
    """The default preset's shape, shrunk so a run takes seconds; still real reviews and the real test set.

    With ``ngrams`` (the product's architecture): a 2,000-word vocabulary,
    rows of 200 ids, an n-gram branch of 2,000 + 40,009 buckets and a cell
    over the last 32 ids. Without: the notebook's plain cell over 100 ids.
    """
    from sentilite.train.config import preset_config

    if ngrams:
        cfg = preset_config("default", cell, input)
        return cfg.replace(
            tokenizer={"vocab_size": 2000, "maxlen": 200, **tokenizer},
            model={"embedding_dim": 16, "units": 16, "window": 32, "ngram_buckets": 40009},
            training={"train_subset": subset, "max_epochs": epochs, "batch_size": 32, "learning_rate": 3e-3},
        )
    cfg = preset_config("seed", cell, input)
    return cfg.replace(
        tokenizer={"vocab_size": 2000, "maxlen": 100, **tokenizer},
        model={"embedding_dim": 16, "units": 16},
        training={"train_subset": subset, "max_epochs": epochs + 1, "batch_size": 32, "learning_rate": 3e-3},
    )


@pytest.fixture(scope="session")
def trained_models(imdb, tmp_path_factory):
    """One briefly trained model folder per cell, shared by the training and export tests."""
    from sentilite.train.fit import train_model

    root = tmp_path_factory.mktemp("trained")
    out = {}
    for cell in ("rnn", "lstm", "gru"):
        metrics = train_model(small_config(cell), root / cell, imdb, verbose=0, test_reviews=TEST_REVIEWS)
        out[cell] = (root / cell, metrics)
    return out


@pytest.fixture(scope="session")
def exported(trained_models, imdb, tmp_path_factory):
    """Each briefly trained model exported to every format and precision (2,000 test reviews)."""
    import shutil

    from sentilite.export.package import ExportConfig, export_package

    out = {}
    root = tmp_path_factory.mktemp("exported")
    for cell in ("rnn", "lstm", "gru"):
        folder = root / cell
        shutil.copytree(trained_models[cell][0], folder)
        config = ExportConfig(test_reviews=TEST_REVIEWS, calibration_reviews=300)
        out[cell] = (folder, export_package(folder, imdb, config, SEED_MODEL_VALIDATION, progress=False))
    return out


def _seed_model_validation():
    """The product limits, with the label-agreement floor of 8-bit files lowered for seconds-trained models.

    These models are unsure of many reviews, so one flipped label among the
    validation reviews moves agreement by a tenth of a point: their 8-bit
    files measured 98.9% to 99.9% over re-exports that changed nothing but
    rounding, and an int8 file once scored 0.65 points above its Keras model
    on the 2,000 test reviews (13 reviews). The accuracy limit is therefore as
    wide as the agreement floor allows, 1.5 points; the default models meet
    the product limits (0.3 points) in `make export`. fp16's floor is 99.5%
    instead of 99.9%: the one-hot SimpleRNN of test_export (750 validation
    reviews) flipped one of them under fp16 on an AVX-512 CPU (99.87%) and
    none on an AVX2 one, where the float kernels round differently.
    """
    from sentilite.export.validate import ValidationConfig

    v = ValidationConfig().replace("fp16", min_agreement=0.995)
    v = v.replace("dynamic-int8", min_agreement=0.99, max_accuracy_change=0.01)
    return v.replace("int8", min_agreement=0.985, max_accuracy_change=0.015)


SEED_MODEL_VALIDATION = _seed_model_validation()


@pytest.fixture(scope="session")
def runtime_only_python(tmp_path_factory):
    """python of a fresh venv holding the runtime and one backend extra, installed from a clean copy of the
    repository; one venv per extra, shared by the install and bundled-model tests (each install takes a minute)."""
    import subprocess
    import venv

    from test_install import _source_copy

    root = tmp_path_factory.mktemp("runtime-only")
    made: dict[str, Path] = {}

    def python_with(extra: str) -> Path:
        if extra not in made:
            env_dir = root / f"venv-{extra}"
            venv.EnvBuilder(with_pip=True).create(env_dir)
            python = env_dir / "bin" / "python"
            result = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                     f"{_source_copy(root)}[{extra}]"], capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
            made[extra] = python
        return made[extra]

    return python_with
