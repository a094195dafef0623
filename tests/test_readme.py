"""The README's commands and snippets run as written, and the docs name only modules that exist.

Every fenced ```bash and ```python block of README.md is run. The HTML
comment on the line before a block (blank lines between allowed) says where:

    <!-- not run: REASON -->                 not run; the reason says why (an install, a long job)
    <!-- run: bundled model, any directory -->  in an empty folder, on the model inside the package
    <!-- run: repository root -->           in the repository itself (commands that only read it)
    (no comment)                            in a folder laid out as a clone after `make export`

In that last folder `artifacts/gru` is a tiny package built from random
weights (no training, no IMDB data), so those blocks check that the commands
and the API work as shown, not what the model answers. A ```text block right
after a block is what the block prints: it is compared line by line, numbers
within 0.01 (their last digits depend on the file that answers), and only
blocks on the bundled model may show one. A block that names a TFLite file
needs the tiny package's TFLite files, which TensorFlow takes about a minute
to convert: those blocks are integration tests.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
MAX_NOT_RUN = 5
OUTPUT_TOLERANCE = 0.01
BLOCK_TIMEOUT_S = 300

NOT_RUN = "not run"
BUNDLED = "bundled model, any directory"
REPOSITORY = "repository root"
AFTER_EXPORT = "after make export"

FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*(not run|run):\s*(.*?)\s*-->$")
NUMBER = re.compile(r"-?\d+\.\d+|-?\d+")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # of the opening fence, 1-based
    where: str  # NOT_RUN, BUNDLED, REPOSITORY or AFTER_EXPORT
    reason: str = ""
    output: str | None = None  # the ```text block right after it

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.language}"

    @property
    def needs_tflite(self) -> bool:
        return ".tflite" in self.code or "tflite" in re.findall(r"--format\s+(\w+)", self.code)


def read_blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, each with the marker before it and the output block after it."""
    lines = text.splitlines()
    fenced = []  # (language, code, opening line index, closing line index, marker or None)
    marker = None
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            fenced.append((fence.group(1), "\n".join(lines[i + 1:end]) + "\n", i, end, marker))
            marker, i = None, end + 1
            continue
        if lines[i].strip():
            found = MARKER.match(lines[i].strip())
            marker = found.groups() if found else None
        i += 1
    blocks = []
    for index, (language, code, start, end, marker) in enumerate(fenced):
        if language not in ("bash", "python"):
            continue
        after = fenced[index + 1] if index + 1 < len(fenced) else None
        output = None
        if after and after[0] == "text" and not any(line.strip() for line in lines[end + 1: after[2]]):
            output = after[1]
        if marker is None:
            where, reason = AFTER_EXPORT, ""
        elif marker[0] == NOT_RUN:
            where, reason = NOT_RUN, marker[1]
        else:
            where, reason = marker[1], ""
        blocks.append(Block(language, code, start + 1, where, reason, output))
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))
RUN = [b for b in BLOCKS if b.where != NOT_RUN]


# -- the README itself ------------------------------------------------------------------------
def test_the_readme_is_short_and_starts_with_the_install():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < MAX_README_LINES
    first_screen = "\n".join(text.splitlines()[:45])
    assert "pip install '.[onnx]'" in first_screen and 'sentilite predict "A wonderful film."' in first_screen


def test_every_block_says_where_it_runs_and_few_are_not_run():
    where = {b.where for b in BLOCKS}
    assert where <= {NOT_RUN, BUNDLED, REPOSITORY, AFTER_EXPORT}, where
    not_run = [b for b in BLOCKS if b.where == NOT_RUN]
    assert len(not_run) <= MAX_NOT_RUN, [b.id for b in not_run]
    assert all(len(b.reason) >= 20 for b in not_run), [(b.id, b.reason) for b in not_run]
    assert len(RUN) >= 8


def test_only_answers_of_the_bundled_model_are_shown():
    """The tiny package answers at random, so an output shown under one of its blocks would go unchecked."""
    assert [b.id for b in BLOCKS if b.output is not None and b.where != BUNDLED] == []
    assert any(b.output is not None for b in BLOCKS)


def test_no_install_command_that_finds_nothing():
    """sentilite is installed from a clone: `pip install 'sentilite[...]'` looks for it on an index, and fails.

    The one mention allowed is the sentence that says so.
    """
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        text = " ".join(path.read_text(encoding="utf-8").split())
        assert not re.search(r"pip install '?sentilite\[[^\]]*\](?!'?`? finds nothing)", text), path


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a markdown file's headings."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_to_files_of_the_repository_exist():
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", path.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            linked = path.parent / target if target else path
            assert linked.exists(), f"{path.name} links to {target}, which does not exist"
            if anchor and linked.suffix == ".md":
                assert anchor in _anchors(linked), f"{path.name} links to {target}#{anchor}, which has no such heading"


# -- running the blocks -----------------------------------------------------------------------
def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _run(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    if block.language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    else:
        command = [sys.executable, "-c", block.code]
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, encoding="utf-8",
                          timeout=BLOCK_TIMEOUT_S)


def _same_output(shown: str, printed: str) -> bool:
    """Line by line, the words alike and every number within OUTPUT_TOLERANCE."""
    shown_lines, printed_lines = shown.strip().splitlines(), printed.strip().splitlines()
    if len(shown_lines) != len(printed_lines):
        return False
    for a, b in zip(shown_lines, printed_lines):
        if NUMBER.sub("#", a) != NUMBER.sub("#", b):
            return False
        if any(abs(float(x) - float(y)) > OUTPUT_TOLERANCE for x, y in zip(NUMBER.findall(a), NUMBER.findall(b))):
            return False
    return True


def _bundled_model_or_skip() -> Path:
    try:
        from sentilite.runtime import bundled
    except ImportError as exc:
        pytest.skip(f"sentilite.runtime.bundled does not import ({exc}): no model inside the package yet")
    from sentilite.shared.errors import ModelFileError

    try:
        return bundled.path()
    except ModelFileError as exc:
        pytest.skip(f"the bundled model is not in this install: {exc}")


def _params():
    for block in RUN:
        marks = [pytest.mark.integration] if block.needs_tflite else []
        yield pytest.param(block, id=block.id, marks=marks)


@pytest.mark.parametrize("block", list(_params()))
def test_block_runs_as_written(block, tmp_path, request):
    if block.where == BUNDLED:
        _bundled_model_or_skip()
        cwd = tmp_path / "anywhere"
        cwd.mkdir()
    elif block.where == REPOSITORY:
        cwd = ROOT
    else:
        cwd = tmp_path / "clone"
        shutil.copytree(request.getfixturevalue("tflite_package" if block.needs_tflite else "tiny_package"),
                        cwd / "artifacts" / "gru")
    result = _run(block, cwd)
    assert result.returncode == 0, f"{block.id} failed in {cwd}:\n{block.code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    if block.output is not None:
        assert _same_output(block.output, result.stdout), f"{block.id} printed:\n{result.stdout}\nnot:\n{block.output}"


def test_the_bundled_model_has_the_figures_the_readme_gives():
    folder = _bundled_model_or_skip()
    manifest = json.loads((folder / "manifest.json").read_text())
    text = README.read_text(encoding="utf-8")
    source = manifest["source"]
    shown = (f"{source['test_accuracy']:.4f}\non the test reviews, "
             + " / ".join(f"{a:.4f}" for a in source["short_text"]["accuracy"]))
    assert " ".join(shown.split()) in " ".join(text.split())
    for artifact in manifest["artifacts"]:
        assert f"`{artifact['file']}` ({artifact['bytes']:,} bytes)" in " ".join(text.split())


# -- a tiny package: random weights, the real exporters ------------------------------------------
VOCAB, MAXLEN = 40, 12
WORDS = "a wonderful film dull i checked my watch every five minutes great awful the".split()
ONNX_PRECISIONS = ("fp32", "fp16", "dynamic-int8", "int8")


def _context():
    from sentilite.export.registry import ExportContext
    from sentilite.runtime.architecture import ModelConfig
    from sentilite.runtime.numpy_model import expected_shapes
    from sentilite.runtime.tokenizer import OOV_TOKEN, PAD_TOKEN, Tokenizer, TokenizerConfig

    model = ModelConfig(cell="gru", embedding_dim=4, units=4, window=8, ngram_buckets=7)
    words = [PAD_TOKEN, OOV_TOKEN, *WORDS] + [f"w{i}" for i in range(VOCAB - 2 - len(WORDS))]
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN), words).to_json().encode()
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(0, 0.4, s).astype(np.float32) for k, s in expected_shapes(model, VOCAB).items()}
    rows = np.random.default_rng(1).integers(1, VOCAB, (16, MAXLEN)).astype(np.int32)
    return ExportContext(weights, model, MAXLEN, VOCAB, "tiny", rows, tokenizer, ("negative", "positive"))


def _write_package(folder: Path, files: list[tuple[str, str]]) -> Path:
    """tokenizer.json, each (exporter, precision) file as export_package names it, and manifest.json."""
    from sentilite.export.file_metadata import embedded_metadata
    from sentilite.export.registry import EXPORTERS

    ctx = _context()
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_bytes(ctx.tokenizer_json)
    artifacts = []
    for key, precision in files:
        exporter = EXPORTERS[key]
        name = exporter.file_name(precision)
        metadata = embedded_metadata(ctx.tokenizer_json, ctx.model, precision, exporter.format, ctx.labels,
                                     MAXLEN, VOCAB, ctx.name)
        exporter.write(ctx, precision, folder / name, metadata=metadata)
        data = (folder / name).read_bytes()
        artifacts.append({"file": name, "format": exporter.format, "precision": precision, "bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {"format_version": 1, "name": ctx.name, "cell": ctx.model.cell, "labels": list(ctx.labels),
                "tokenizer": {"file": "tokenizer.json", "sha256": hashlib.sha256(ctx.tokenizer_json).hexdigest()},
                "artifacts": artifacts}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory) -> Path:
    """The numpy file and the four ONNX files (seconds)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    files = [("numpy", "fp32"), *(("onnx", p) for p in ONNX_PRECISIONS)]
    return _write_package(tmp_path_factory.mktemp("readme") / "gru", files)


@pytest.fixture(scope="session")
def tflite_package(tmp_path_factory) -> Path:
    """The same with the fp32 and int8 TFLite files (TensorFlow's converter: about a minute)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    files = [("numpy", "fp32"), *(("onnx", p) for p in ONNX_PRECISIONS), ("tflite", "fp32"), ("tflite", "int8")]
    return _write_package(tmp_path_factory.mktemp("readme-tflite") / "gru", files)


# -- docs/architecture.md names the modules there are --------------------------------------------
ARCHITECTURE = DOCS / "architecture.md"
CODE_FOLDERS = ("core", "core/shared", "runtime", "train", "export", "export/onnx", "export/tflite",
                "export/mediapipe", "bench", "score")
FOLDER_HEADING = re.compile(r"^### `([\w/]+)/`")
ROW = re.compile(r"^\| `([\w/]+\.py)` \|")


def _architecture_rows() -> set[str]:
    """Every module a row of the module tables names, as a path from the repository root."""
    rows, folder = set(), None
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        heading = FOLDER_HEADING.match(line)
        if heading:
            folder = heading.group(1)
            continue
        row = ROW.match(line)
        if row and folder:
            name = row.group(1)
            rows.add(name if "/" in name else f"{folder}/{name}")
    return rows


def test_every_module_in_the_architecture_page_exists():
    rows = _architecture_rows()
    assert sorted(m for m in rows if not (ROOT / m).is_file()) == []


def test_every_module_has_a_row_in_the_architecture_page():
    modules = {f"{folder}/{p.name}" for folder in CODE_FOLDERS for p in (ROOT / folder).glob("*.py")
               if p.name != "__init__.py" or folder == "core"}
    assert sorted(modules - _architecture_rows()) == []
