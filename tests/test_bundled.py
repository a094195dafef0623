"""The model inside the package (runtime/models/imdb-gru, written by `make bundle`).

Its files match its committed manifest; its figures are those of a fresh `make export` when one is here; a
runtime-only install, used from outside the repository, answers with it offline.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sentilite.cli import main
from sentilite.export.bundle import BUNDLED_FILES, COMMIT_AT_BUNDLE_TIME, COMMIT_GIVEN, BundleError, bundle
from sentilite.runtime import bundled
from sentilite.runtime.model import MANIFEST_FILE, load, read_manifest
from sentilite.shared.errors import ModelFileError
from sentilite.shared.files import sha256_bytes
from test_install import _clean_env, _source_copy

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "runtime" / "models" / bundled.DEFAULT_MODEL
# Answers of both bundled files; "Not bad at all." (negative) stays out: negation is a known weakness.
KNOWN_ANSWERS = {
    "A wonderful film.": "positive",
    "Dull and awful.": "negative",
    "One of the best movies I have ever seen.": "positive",
    "A waste of time: terrible acting and a boring plot.": "negative",
    "I loved every minute of it.": "positive",
    "The worst film of the year.": "negative",
    "Beautifully shot, moving and funny.": "positive",
    "I want my money back.": "negative",
}


def _bundled_manifest() -> dict:
    return json.loads((BUNDLE / MANIFEST_FILE).read_text())


# -- the committed bundle ---------------------------------------------------------------
def test_every_bundled_file_matches_the_committed_manifest():
    manifest = read_manifest(BUNDLE)
    entries = {a["file"]: (a["bytes"], a["sha256"]) for a in manifest["artifacts"]}
    assert set(BUNDLED_FILES) <= set(entries)
    for file, (size, sha256) in entries.items():
        content = (BUNDLE / file).read_bytes()
        assert (len(content), sha256_bytes(content)) == (size, sha256), file
    tokenizer = manifest["tokenizer"]
    assert sha256_bytes((BUNDLE / tokenizer["file"]).read_bytes()) == tokenizer["sha256"]
    # the folder holds exactly what the manifest names, so the wheel ships nothing else
    assert sorted(p.name for p in BUNDLE.iterdir()) == sorted([MANIFEST_FILE, tokenizer["file"], *entries])


def test_the_bundled_manifest_says_where_the_model_came_from():
    manifest = _bundled_manifest()
    provenance = manifest["bundle"]
    assert provenance["name"] == bundled.DEFAULT_MODEL
    assert re.fullmatch("[0-9a-f]{40}", provenance["commit"]), provenance["commit"]
    assert provenance["commit_source"] in (COMMIT_AT_BUNDLE_TIME, COMMIT_GIVEN)
    assert provenance["date"][:4].isdigit()
    assert set(provenance["files"]) <= set(provenance["exported_files"])
    assert manifest["cell"] == "gru" and manifest["source"]["test_reviews"] == 25000
    for artifact in manifest["artifacts"]:
        assert artifact["eval"]["n"] == 25000 and 0.9 < artifact["eval"]["accuracy"] < 1


def test_bundled_path_names_the_folder_and_refuses_what_is_not_there(tmp_path, monkeypatch):
    assert bundled.DEFAULT_MODEL in bundled.NAMES
    assert bundled.path() == bundled.path(bundled.DEFAULT_MODEL) == BUNDLE
    with pytest.raises(ModelFileError, match=r"'imdb-lstm': no such bundled model; the package holds imdb-gru"):
        bundled.path("imdb-lstm")
    monkeypatch.setattr(bundled, "MODELS_DIR", tmp_path)
    with pytest.raises(ModelFileError, match="the bundled model 'imdb-gru' is missing from this install"):
        bundled.path()


def test_the_bundled_model_gives_the_known_answers_in_each_format():
    for fmt in ("onnx", "tflite"):
        model = load(bundled.path(), format=fmt)
        assert model.predict(list(KNOWN_ANSWERS)) == list(KNOWN_ANSWERS.values()), fmt


# -- the bundled figures against a fresh `make export` ----------------------------------------
def _fresh_export() -> Path:
    artifacts = Path(os.environ.get("SENTILITE_ARTIFACTS", ROOT / "artifacts"))
    folder = artifacts / "gru"
    if not (folder / MANIFEST_FILE).is_file():
        pytest.skip(f"no `make export` run to compare the bundled model with: {folder / MANIFEST_FILE} does not exist "
                    "(run make export, or set SENTILITE_ARTIFACTS to the folder of one)")
    return folder


def test_a_fresh_export_reproduces_the_bundled_files_and_figures():
    fresh = json.loads((_fresh_export() / MANIFEST_FILE).read_text())
    manifest = _bundled_manifest()
    fresh_entries = {a["file"]: a for a in fresh["artifacts"]}
    for artifact in manifest["artifacts"]:
        assert artifact == fresh_entries.get(artifact["file"]), artifact["file"]
    for part in ("tokenizer", "source", "config", "labels", "cell"):
        assert manifest[part] == fresh[part], part


# -- sentilite bundle on an export-shaped folder --------------------------------------------
EXTRA_FILE = "model.fp32.onnx"


@pytest.fixture
def export_dir(tmp_path) -> Path:
    """An exported package: the bundled files and entries, plus one file that stays out of a bundle."""
    folder = tmp_path / "artifacts" / "gru"
    folder.mkdir(parents=True)
    manifest = _bundled_manifest()
    del manifest["bundle"]
    for file in [manifest["tokenizer"]["file"], *(a["file"] for a in manifest["artifacts"])]:
        shutil.copyfile(BUNDLE / file, folder / file)
    extra = b"not bundled"
    (folder / EXTRA_FILE).write_bytes(extra)
    manifest["artifacts"].insert(0, {"file": EXTRA_FILE, "format": "onnx", "precision": "fp32", "bytes": len(extra),
                                     "sha256": sha256_bytes(extra), "eval": {"accuracy": 0.5}})
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder


def test_bundle_copies_the_chosen_files_with_their_entries_whole(export_dir, tmp_path):
    out = tmp_path / "models" / "imdb-gru"
    written = bundle(export_dir, out, commit="0" * 40, date="2026-01-02T03:04:05Z")
    source = json.loads((export_dir / MANIFEST_FILE).read_text())
    assert json.loads((out / MANIFEST_FILE).read_text()) == written
    assert [a["file"] for a in written["artifacts"]] == list(BUNDLED_FILES)
    by_file = {a["file"]: a for a in source["artifacts"]}
    assert written["artifacts"] == [by_file[f] for f in BUNDLED_FILES]
    assert {k: v for k, v in written.items() if k not in ("artifacts", "bundle")} == \
        {k: v for k, v in source.items() if k != "artifacts"}
    assert written["bundle"] == {
        "name": "imdb-gru", "files": list(BUNDLED_FILES), "exported_files": sorted([EXTRA_FILE, *BUNDLED_FILES]),
        "export_manifest_sha256": sha256_bytes((export_dir / MANIFEST_FILE).read_bytes()),
        "commit": "0" * 40, "commit_source": COMMIT_GIVEN, "date": "2026-01-02T03:04:05Z"}
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_FILE, "tokenizer.json", *BUNDLED_FILES])
    for file in ("tokenizer.json", *BUNDLED_FILES):
        assert (out / file).read_bytes() == (export_dir / file).read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name != out.name], "a staging folder was left behind"
    assert load(out).predict(["A wonderful film."]) == ["positive"]


def test_bundle_takes_the_commit_of_the_tree_holding_the_export(export_dir, tmp_path):
    repo = tmp_path / "artifacts"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "trained here"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    provenance = bundle(export_dir, tmp_path / "out")["bundle"]
    assert (provenance["commit"], provenance["commit_source"], provenance["tree_clean"]) == \
        (head, COMMIT_AT_BUNDLE_TIME, True)


def test_bundle_outside_a_git_tree_asks_for_the_commit(export_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(BundleError, match="not in a git tree .*give the commit the model was trained from with "
                                          "--commit"):
        bundle(export_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bundle_refuses_a_damaged_or_missing_file_and_keeps_the_previous_bundle(export_dir, tmp_path):
    out = tmp_path / "out"
    first = bundle(export_dir, out, commit="1" * 40)
    damaged = export_dir / BUNDLED_FILES[0]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelFileError, match="size or sha256 does not match"):
        bundle(export_dir, out, commit="2" * 40)
    with pytest.raises(ModelFileError, match=r"no \['model.int8.onnx'\] to bundle; it holds"):
        bundle(export_dir, out, ["model.int8.onnx"], commit="2" * 40)
    assert json.loads((out / MANIFEST_FILE).read_text()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "out"]


def test_bundle_replaces_a_previous_bundle_whole(export_dir, tmp_path):
    out = tmp_path / "out"
    bundle(export_dir, out, [EXTRA_FILE, *BUNDLED_FILES], commit="1" * 40)
    assert (out / EXTRA_FILE).exists()
    bundle(export_dir, out, commit="2" * 40)
    assert not (out / EXTRA_FILE).exists()
    assert json.loads((out / MANIFEST_FILE).read_text())["bundle"]["commit"] == "2" * 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "out"]


def test_sentilite_bundle_command(export_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bundle", str(export_dir), "--out", str(out), "--commit", "3" * 40]) == 0
    printed = capsys.readouterr().out
    assert f"imdb-gru: commit {'3' * 40}" in printed and "model.int8.tflite" in printed
    assert [a["file"] for a in read_manifest(out)["artifacts"]] == list(BUNDLED_FILES)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_bundle_runs_sentilite_bundle_on_the_exported_gru():
    result = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "bundle",
                             "ARTIFACTS=/elsewhere/artifacts"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == \
        ".venv/bin/sentilite bundle /elsewhere/artifacts/gru --out runtime/models/imdb-gru"
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60).stdout
    assert "copy the exported gru model's int8 TFLite and ONNX files into the package" in listed


# -- a runtime-only install, from outside the repository -----------------------------------
API_CHECK = """
import json, sys
from sentilite.runtime import bundled, load
texts = json.loads(sys.argv[1])
out = {}
model = load(bundled.path())
out["path"] = {"info": model.info, "labels": model.predict(texts)}
try:
    model = load()
    out["default"] = {"info": model.info, "labels": model.predict(texts)}
except Exception as exc:
    out["default"] = {"error": f"{type(exc).__name__}: {exc}"}
try:
    import tensorflow
    out["tensorflow"] = True
except ImportError:
    out["tensorflow"] = False
print(json.dumps(out))
"""


def _offline(command: list[str]) -> list[str]:
    """The command in a network namespace of its own (no network at all) where this machine allows one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn", *command]
    return command


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bundled-wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp / "wheels"),
                            str(_source_copy(tmp))], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    (path,) = (tmp / "wheels").glob("sentilite-*.whl")
    return path


@pytest.mark.integration
def test_the_wheel_holds_the_bundled_files(wheel):
    prefix = f"sentilite/runtime/models/{bundled.DEFAULT_MODEL}/"
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(n[len(prefix):] for n in archive.namelist() if n.startswith("sentilite/runtime/models/"))
        assert names == sorted(p.name for p in BUNDLE.iterdir())
        for name in names:
            assert archive.read(prefix + name) == (BUNDLE / name).read_bytes(), name


@pytest.mark.integration
@pytest.mark.parametrize("extra, fmt", [("onnx", "onnx"), ("tflite", "tflite")])
def test_a_runtime_only_install_answers_with_the_bundled_model_offline(runtime_only_python, tmp_path, extra, fmt):
    python = runtime_only_python(extra)  # pip install '<a clean copy of the repository>[extra]', as test_install's
    env_dir, sentilite = python.parent.parent, python.parent / "sentilite"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    api = subprocess.run(_offline([str(python), "-c", API_CHECK, json.dumps(list(KNOWN_ANSWERS))]),
                         capture_output=True, text=True, cwd=elsewhere, timeout=300, env=_clean_env())
    assert api.returncode == 0, api.stderr[-3000:]
    answers = json.loads(api.stdout.splitlines()[-1])
    print(extra, json.dumps(answers, indent=1))
    assert answers["tensorflow"] is False
    assert answers["path"]["labels"] == list(KNOWN_ANSWERS.values())
    info = answers["path"]["info"]
    assert info["format"] == fmt and Path(info["package"]).resolve().is_relative_to(env_dir.resolve()), info

    predict = subprocess.run(_offline([str(sentilite), "predict", "A wonderful film."]), capture_output=True,
                             text=True, cwd=elsewhere, timeout=300, env=_clean_env())
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert json.loads(predict.stdout.splitlines()[-1])["label"] == "positive"
    assert answers["default"].get("labels") == list(KNOWN_ANSWERS.values()), answers["default"]
    described = subprocess.run([str(sentilite), "info"], capture_output=True, text=True, cwd=elsewhere, timeout=120,
                               env=_clean_env())
    assert described.returncode == 0, described.stderr[-3000:]
    assert _bundled_manifest()["bundle"]["commit"] in described.stdout, described.stdout
