"""`sentilite export MODEL_DIR`: every registered format and precision, each validated, in one package.

All files are written to a staging folder first; only when every one has
passed its check are they moved into MODEL_DIR, manifest last, so a failed
export leaves the previous package untouched. With ``skip_failing``
(``--skip-failing``) a file that fails its check is left out instead, with
its reason in the log and the manifest's ``skipped``, and the others are kept. Validation is the same for
every file of the runtime's formats (``validate.validate_with_runtime``): the
file is loaded by the runtime, run the way the runtime runs it, and compared
with the Keras model; a client's file (MediaPipe's) brings its own validator
with the same signature.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite import __version__
from sentilite.runtime.model import MANIFEST_FILE, MANIFEST_VERSION, PRECISIONS
from sentilite.runtime.tokenizer import Tokenizer
from sentilite.shared.config import check_int, config_to_dict
from sentilite.shared.errors import ConfigError, ModelFileError
from sentilite.shared.files import atomic_write_json, make_staging_dir, parse_json, sha256_bytes
from sentilite.train.config import RunConfig
from sentilite.train.data import TrainingData, load_training_data, subset
from sentilite.train.evaluate import SHORT_TEXT_WORDS, short_texts
from sentilite.train.fit import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, split_training_reviews

from .errors import ExportValidationError
from .file_metadata import embedded_metadata
from .registry import EXPORTERS, ExportContext, Exporter
from .validate import Evaluation, EvaluationSet, ValidationConfig, WrittenFile, top_label_accuracy
from .weights import extract_weights

log = logging.getLogger("sentilite.export")


@dataclass(frozen=True)
class ExportConfig:
    formats: tuple[str, ...] = tuple(EXPORTERS)
    precisions: tuple[str, ...] = PRECISIONS
    # Training reviews for int8 calibration (never test reviews).
    calibration_reviews: int = 300
    validation_reviews: int | None = None  # None = every validation review of the training split
    test_reviews: int | None = None  # None = every test text (all 25,000 IMDB test reviews)
    # Leave out a file that fails its check (its reason in the manifest's "skipped") instead of the whole export.
    skip_failing: bool = False

    def __post_init__(self):
        bad = [f for f in self.formats if f not in EXPORTERS]
        if bad:
            raise ConfigError(f"ExportConfig.formats: unknown {bad}; choose from {tuple(EXPORTERS)}")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad:
            raise ConfigError(f"ExportConfig.precisions: unknown {bad}; choose from {PRECISIONS}")
        check_int("ExportConfig", "calibration_reviews", self.calibration_reviews, 1)

    def jobs(self) -> list[tuple[Exporter, str]]:
        out = []
        for fmt in self.formats:
            exporter = EXPORTERS[fmt]
            wanted = [p for p in exporter.precisions if p in self.precisions] if len(exporter.precisions) > 1 \
                else list(exporter.precisions)
            out += [(exporter, p) for p in wanted]
        return out

    def to_dict(self) -> dict:
        """The manifest's "export"; ``skip_failing`` only when set, so manifests read as before."""
        out = config_to_dict(self)
        if not self.skip_failing:
            del out["skip_failing"]
        return out


def _versions() -> dict:
    import importlib.metadata as md

    out = {"sentilite": __version__, "python": sys.version.split()[0]}
    for dist in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy", "scikit-learn"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _runnable(jobs: list[tuple[Exporter, str]], run_config: RunConfig) -> tuple[list, list[dict]]:
    """The jobs a model can have, and a record (file, reason) of each it cannot: MediaPipe's tokenizer, say."""
    from .mediapipe import unsupported_reason

    kept, skipped = [], []
    for exporter, precision in jobs:
        reason = unsupported_reason(run_config) if exporter.client == "mediapipe" else None
        if reason is None:
            kept.append((exporter, precision))
        else:
            name = exporter.file_name(precision)
            log.info("%s left out: %s", name, reason)
            skipped.append({"file": name, "format": exporter.format, "client": exporter.client, "reason": reason})
    return kept, skipped


def _failing_hint(precision: str, config: ExportConfig) -> str:
    """What a user can do about a file that failed its check."""
    hint = "Add --skip-failing to write the files that pass and leave this one out"
    if precision == "int8":
        hint += (f"; an int8 file may pass when calibrated on more training texts (--calibration-reviews, now "
                 f"{config.calibration_reviews})")
    return hint


def read_model_folder(model_dir: Path) -> tuple[RunConfig, bytes, Tokenizer]:
    for needed in (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE):
        if not (model_dir / needed).is_file():
            raise ModelFileError(f"{model_dir}: missing {needed}; train a model there first (sentilite train)")
    source = str(model_dir / CONFIG_FILE)
    run_config = RunConfig.from_dict(parse_json((model_dir / CONFIG_FILE).read_bytes(), source, ModelFileError), source)
    tokenizer_bytes = (model_dir / TOKENIZER_FILE).read_bytes()
    return run_config, tokenizer_bytes, Tokenizer.from_json(tokenizer_bytes, str(model_dir / TOKENIZER_FILE))


def export_package(model_dir: str | os.PathLike, data: TrainingData | str | os.PathLike | None = None,
                   config: ExportConfig = ExportConfig(), validation: ValidationConfig | None = None,
                   *, progress: bool = True, allow_incomplete: bool = False) -> dict:
    """Export, validate and evaluate every file; returns the manifest written to MODEL_DIR.

    ``validation`` holds each precision's tolerances (default: the product limits). ``allow_incomplete``:
    an IMDB copy missing reviews is read anyway (``load_imdb``).
    """
    validation = validation if validation is not None else ValidationConfig()
    from sentilite.train.keras_model import load_keras_model

    model_dir = Path(model_dir)
    run_config, tokenizer_bytes, tokenizer = read_model_folder(model_dir)
    keras_model = load_keras_model(model_dir / MODEL_FILE)
    weights = extract_weights(keras_model, run_config.model)

    if not isinstance(data, TrainingData):
        # The splits the model was trained on, read again from what config.json says (IMDB: ``data`` may
        # name the archive or folder).
        data = load_training_data(run_config, imdb_source=data, progress=progress, allow_incomplete=allow_incomplete)
    labels = run_config.model.labels
    fit_part, val_part = split_training_reviews(run_config, data)
    val_texts, val_labels = val_part.texts, val_part.labels
    if config.validation_reviews:
        # IMDB's splits come shuffled; another file's keep file order, which may be sorted by label: a seeded
        # sample with each label in proportion instead of the first rows.
        part = val_part if data.imdb else subset(val_part, config.validation_reviews, seed=0)
        val_texts, val_labels = part.texts[: config.validation_reviews], part.labels[: config.validation_reviews]
    test = data.test if config.test_reviews is None else subset(data.test, config.test_reviews, seed=0)
    log.info("%s: %s, %d validation and %d test texts (%s)", model_dir, run_config.name, len(val_texts), len(test),
             data.describe())

    def keras_outputs(ids):
        """P(labels[1]) (n,) for two labels, else the (n, N) probabilities."""
        out = keras_model.predict(ids, batch_size=512, verbose=0)
        return out.reshape(-1) if run_config.model.outputs == 1 else out

    def evaluation_set(name, texts, labels):
        ids = tokenizer.encode_batch(texts)
        return EvaluationSet(name, ids, np.asarray(labels), keras_outputs(ids), tuple(texts))

    validation_set = evaluation_set("validation", val_texts, val_labels)
    test_set = evaluation_set("test", test.texts, test.labels)
    # The short-text check (the last few words of each review) is IMDB's: its reviews are long.
    short_words = SHORT_TEXT_WORDS if data.imdb else ()
    short_sets = [evaluation_set(f"last {k} words", short_texts(test.texts, k), test.labels) for k in short_words]
    keras_accuracy = top_label_accuracy(test_set.keras, test_set.labels)
    evaluation = Evaluation(validation, validation_set, test_set, tuple(short_sets), keras_accuracy, labels)
    source_short = [round(top_label_accuracy(s.keras, s.labels), 6) for s in short_sets]
    if short_sets:
        log.info("Keras model: test accuracy %.4f; last %s words %s", keras_accuracy,
                 "/".join(map(str, short_words)), "/".join(f"{a:.4f}" for a in source_short))
    else:
        log.info("Keras model: test accuracy %.4f", keras_accuracy)

    # The same for the int8 calibration rows: a file sorted by label starts with one label only, and int8
    # ranges calibrated on those clip the other labels' logits (50.3% label agreement on such a file).
    calibration = fit_part if data.imdb else subset(fit_part, config.calibration_reviews, seed=0)
    context = ExportContext(
        weights=weights, model=run_config.model, maxlen=tokenizer.config.maxlen,
        vocab_size=tokenizer.config.vocab_size, name=run_config.name,
        calibration_ids=tokenizer.encode_batch(calibration.texts[: config.calibration_reviews]),
        tokenizer_json=tokenizer_bytes, labels=labels, training_texts=tuple(fit_part.texts))
    jobs, skipped = _runnable(config.jobs(), run_config)
    staging = make_staging_dir(model_dir / ".export")
    artifacts = []
    try:
        for index, (exporter, precision) in enumerate(jobs, 1):
            name = exporter.file_name(precision)
            path = staging / name
            started = time.time()
            metadata = embedded_metadata(tokenizer_bytes, run_config.model, precision, exporter.format, labels,
                                         tokenizer.config.maxlen, tokenizer.config.vocab_size, run_config.name)
            exporter.write(context, precision, path, metadata=metadata)
            artifact = {"file": name, "format": exporter.format, "precision": precision}
            if exporter.client:
                artifact["client"] = exporter.client
            written = WrittenFile(path, str(model_dir / name), exporter.format, precision, metadata)
            try:
                artifact.update(exporter.validate(written, evaluation))
            except ExportValidationError as error:
                if not config.skip_failing:
                    raise ExportValidationError(f"{error}. {_failing_hint(precision, config)}") from None
                log.warning("%d/%d %s left out: %s", index, len(jobs), name, error)
                skipped.append({"file": name, "format": exporter.format, "precision": precision,
                                "reason": str(error), "failed_check": True})
                path.unlink(missing_ok=True)
                continue
            artifact.update(exporter.describe(path))
            artifacts.append(artifact)
            ev = artifact["eval"]
            short = (f"; last {'/'.join(map(str, short_words))} words "
                     + "/".join(f"{a:.4f}" for a in ev["short_text"]["accuracy"])) if "short_text" in ev else ""
            log.info("%d/%d %s: %s bytes, test accuracy %.4f, agreement %.4f%%, max diff %.2g%s (%.1f s)", index,
                     len(jobs), name, f"{artifact['bytes']:,}", ev["accuracy"], 100 * ev["agreement"],
                     ev["max_abs_diff"], short, time.time() - started)
        manifest = {
            "format_version": MANIFEST_VERSION,
            "name": run_config.name,
            "cell": run_config.model.cell,
            "labels": list(labels),
            "tokenizer": {"file": TOKENIZER_FILE, "sha256": sha256_bytes(tokenizer_bytes)},
            "config": {k: v for k, v in run_config.to_dict().items() if k != "format_version"},
            "export": config.to_dict(),
            "source": {"file": MODEL_FILE, "format": "keras", "test_accuracy": round(keras_accuracy, 6),
                       "test_reviews": len(test), "data": data.describe(),
                       **({"short_text": {"words": list(short_words), "n": len(test), "accuracy": source_short}}
                          if short_sets else {})},
            "versions": _versions(),
            "artifacts": artifacts,
        }
        if not artifacts:
            raise ExportValidationError(f"{model_dir}: no file passed its check: "
                                        + "; ".join(s["reason"] for s in skipped if s.get("failed_check")))
        if skipped:
            manifest["skipped"] = skipped
        for artifact in artifacts:
            os.replace(staging / artifact["file"], model_dir / artifact["file"])
        for left_out in skipped:  # an earlier export's file of that name belongs to no model of this manifest
            if left_out.get("failed_check"):
                (model_dir / left_out["file"]).unlink(missing_ok=True)
        atomic_write_json(model_dir / MANIFEST_FILE, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest

