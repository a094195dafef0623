"""Reading model.mediapipe.tflite back without the clients: its associated files, vocabulary and parts."""
from __future__ import annotations

import io
import os
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExportValidationError
from ..tflite.describe import describe_tflite
from ..tflite.schema import read_model, tensor_type_names
from .metadata import LABEL_FILE, VOCAB_FILE
from .regex_tokenizer import DELIMITER_PATTERN


@dataclass(frozen=True)
class MediapipeFile:
    """The parts of a model.mediapipe.tflite the checks need, read without the clients."""

    content: bytes
    flatbuffer_bytes: int
    files: dict[str, bytes]
    compressed: list[str]

    @classmethod
    def read(cls, path: str | os.PathLike) -> "MediapipeFile":
        content = Path(path).read_bytes()
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
            infos = archive.infolist()
            files = {i.filename: archive.read(i) for i in infos}
        except zipfile.BadZipFile as exc:
            raise ExportValidationError(f"{path}: no associated files ({exc})") from None
        start = min(i.header_offset for i in infos) if infos else len(content)
        return cls(content, start, files, [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED])

    def labels(self) -> tuple[str, ...]:
        """The label file's lines: the names of the output's columns, in order."""
        return tuple(line for line in self.files[LABEL_FILE].decode("utf-8").split("\n") if line)

    def vocabulary(self) -> dict[str, int]:
        lines = self.files[VOCAB_FILE].decode("utf-8").splitlines()
        return {token: int(i) for token, i in (line.split(" ") for line in lines if line)}


def describe_mediapipe(path: str | os.PathLike) -> dict:
    """Operators, shapes, and where the bytes go, for the manifest."""
    file = MediapipeFile.read(path)
    model = read_model(file.content)
    graph = model.subgraphs[0]
    types = tensor_type_names()
    metadata_buffers = {m.buffer for m in model.metadata or []}
    weight_types = Counter()
    for t in graph.tensors:
        if t.buffer > 0 and model.buffers[t.buffer].data is not None:
            weight_types[types[t.type]] += len(model.buffers[t.buffer].data)
    weights = sum(weight_types.values())
    metadata = sum(len(model.buffers[b].data) for b in metadata_buffers if model.buffers[b].data is not None)
    vocab = file.vocabulary()
    tensor = lambda i: graph.tensors[i]  # noqa: E731
    out = describe_tflite(path)
    del out["float_tensors"]  # every activation is float32 here ("activations" in the manifest)
    out.update({
        "subgraphs": len(model.subgraphs),
        "operators": len(graph.operators),
        "inputs": [{"name": (tensor(i).name or b"").decode(), "dtype": types[tensor(i).type].lower(),
                    "shape": [int(d) for d in tensor(i).shape]} for i in graph.inputs],
        "outputs": [{"name": (tensor(i).name or b"").decode(), "dtype": types[tensor(i).type].lower(),
                     "shape": [int(d) for d in tensor(i).shape]} for i in graph.outputs],
        "associated_files": {name: {"bytes": len(content), "stored": name not in file.compressed}
                             for name, content in file.files.items()},
        "vocabulary": {"lines": len(vocab), "kept_ids": max(vocab.values()) + 1},
        "tokenizer": {"type": "RegexTokenizer", "delim_regex_pattern": DELIMITER_PATTERN},
        "size": {"weights": weights, "weights_by_type": dict(weight_types),
                 "graph": file.flatbuffer_bytes - weights - metadata, "metadata": metadata,
                 "zip": len(file.content) - file.flatbuffer_bytes, "total": len(file.content)},
    })
    return out
