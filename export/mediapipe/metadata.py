"""The file's TFLite Support metadata, which the clients read their tokenizer and labels from, and its zip.

MediaPipe's reader refuses a compressed zip ("Expected uncompressed zip
archive.", mediapipe/tasks/cc/metadata/utils/zip_utils.cc), so the
associated files are stored.
"""
from __future__ import annotations

import io
import zipfile

from ..tflite.schema import model_bytes, read_model, set_metadata

VOCAB_FILE, LABEL_FILE = "vocab.txt", "labels.txt"
# The oldest metadata parser that reads a RegexTokenizer with vocabulary and labels (what
# tflite-support's writer computes for this content).
MIN_PARSER_VERSION = "1.2.1"
METADATA_NAME = "TFLITE_METADATA"

# Field slots and enum values of tensorflow/lite/schema/metadata_schema.fbs (the copy in
# mediapipe/tasks/metadata/metadata_schema.fbs): a union takes two slots, its type and its value.
_VOCABULARY, _TENSOR_AXIS_LABELS = 5, 2  # AssociatedFileType
_FEATURE_PROPERTIES = 1  # ContentProperties
_REGEX_TOKENIZER_OPTIONS = 6  # ProcessUnitOptions


def metadata_flatbuffer(*, name: str, description: str, version: str, input_name: str, output_name: str,
                        delimiter: str, labels_description: str) -> bytes:
    """A ModelMetadata ("M001") for a text classifier: a RegexTokenizer and vocab.txt in, labels.txt out.

    Written with the flatbuffers package from the published schema, so the
    export does not need tflite-support (whose writer pins protobuf 3.20.3) or
    mediapipe (whose writer in 1.2.3 fails on a module missing from the
    wheel); the tests read it back with tflite-support's MetadataDisplayer.
    """
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def table(fields):
        """fields: (slot, kind, value) with kind 'offset', 'int8' or 'uint8'; strings made beforehand."""
        b.StartObject(max(slot for slot, _, _ in fields) + 1)
        for slot, kind, value in fields:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "int8":
                b.PrependInt8Slot(slot, value, 0)
            else:
                b.PrependUint8Slot(slot, value, 0)
        return b.EndObject()

    def vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def associated_file(file_name, text, file_type):
        n, d = b.CreateString(file_name), b.CreateString(text)
        return table([(0, "offset", n), (1, "offset", d), (2, "int8", file_type)])

    def feature_content():
        b.StartObject(0)
        properties = b.EndObject()
        return table([(0, "uint8", _FEATURE_PROPERTIES), (1, "offset", properties)])

    vocab = associated_file(VOCAB_FILE, "Token id pairs; several casings of a word share its id.", _VOCABULARY)
    pattern = b.CreateString(delimiter)
    tokenizer = table([(0, "offset", pattern), (1, "offset", vector([vocab]))])
    process_unit = table([(0, "uint8", _REGEX_TOKENIZER_OPTIONS), (1, "offset", tokenizer)])
    in_name, in_text = b.CreateString(input_name), b.CreateString(
        "Token ids of the text: the tokens from the front, <PAD> after them.")
    input_meta = table([(0, "offset", in_name), (1, "offset", in_text), (3, "offset", feature_content()),
                        (4, "offset", vector([process_unit]))])
    labels = associated_file(LABEL_FILE, labels_description, _TENSOR_AXIS_LABELS)
    out_name, out_text = b.CreateString(output_name), b.CreateString("Probability of each label.")
    output_meta = table([(0, "offset", out_name), (1, "offset", out_text), (3, "offset", feature_content()),
                         (6, "offset", vector([labels]))])
    subgraph = table([(2, "offset", vector([input_meta])), (3, "offset", vector([output_meta]))])
    model_name, model_text = b.CreateString(name), b.CreateString(description)
    model_version, parser = b.CreateString(version), b.CreateString(MIN_PARSER_VERSION)
    author = b.CreateString("sentilite")
    root = table([(0, "offset", model_name), (1, "offset", model_text), (2, "offset", model_version),
                  (3, "offset", vector([subgraph])), (4, "offset", author), (7, "offset", parser)])
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def attach_metadata(graph: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """The model with its TFLITE_METADATA buffer, then the associated files as an uncompressed zip after it.

    As tflite-support's MetadataPopulator does, the zip follows the
    flatbuffer and its offsets count from the start of the file. Entries
    get a fixed date so the same model gives the same bytes.
    """
    model = read_model(graph)
    set_metadata(model, METADATA_NAME, metadata)
    out = io.BytesIO(model_bytes(model))
    out.seek(0, io.SEEK_END)  # mode "w" at the end keeps what is before and counts offsets from byte 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            info = zipfile.ZipInfo(file_name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, content)
    return out.getvalue()
