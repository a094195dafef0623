/**
 * What an ONNX file says about itself, read from its protobuf bytes before any engine sees them.
 *
 * onnxruntime-web neither exposes a file's metadata_props nor survives every
 * damaged file gracefully, so the few fields the runtime needs (the metadata,
 * the graph's inputs and outputs) are read here, with every length checked
 * against the bytes that are really there. Anything that is not a ModelProto
 * is refused with a ModelFileError naming the file.
 */
import { ModelFileError } from "./errors.js";

// Field numbers of onnx.proto3.
const MODEL_IR_VERSION = 1;
const MODEL_GRAPH = 7;
const MODEL_METADATA_PROPS = 14;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_INITIALIZER = 5;
const TENSOR_NAME = 8;
const VALUE_INFO_NAME = 1;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_TYPE_ELEM_TYPE = 1;
const TENSOR_TYPE_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_VALUE = 1;
const DIM_PARAM = 2;

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** Tensor element types (TensorProto.DataType) by number, for messages. */
export const ELEMENT_TYPES = { 1: "float32", 6: "int32", 7: "int64", 10: "float16", 11: "float64" };

class Malformed extends Error {}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The fields of one protobuf message: [field number, wire type, value (number or Uint8Array)]. */
function* fields(bytes) {
  let i = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (i >= bytes.length) throw new Malformed("a number runs past the end");
      const byte = bytes[i++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Malformed("a number of more than ten bytes");
  };
  while (i < bytes.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new Malformed("field number 0");
    if (wire === VARINT) {
      yield [field, wire, varint()];
    } else if (wire === LENGTH_DELIMITED) {
      const length = varint();
      if (length > bytes.length - i) throw new Malformed(`a field of ${length} bytes runs past the end`);
      yield [field, wire, bytes.subarray(i, i + length)];
      i += length;
    } else if (wire === FIXED64 || wire === FIXED32) {
      const size = wire === FIXED64 ? 8 : 4;
      if (size > bytes.length - i) throw new Malformed("a fixed-size field runs past the end");
      i += size;
      yield [field, wire, 0];
    } else {
      throw new Malformed(`wire type ${wire}`);
    }
  }
}

function text(value) {
  if (!(value instanceof Uint8Array)) throw new Malformed("a string field holds a number");
  try {
    return utf8.decode(value);
  } catch {
    throw new Malformed("a string field is not UTF-8");
  }
}

function valueInfo(bytes) {
  const info = { name: "", elementType: 0, dims: null };
  for (const [field, , value] of fields(bytes)) {
    if (field === VALUE_INFO_NAME) info.name = text(value);
    if (field !== VALUE_INFO_TYPE || !(value instanceof Uint8Array)) continue;
    for (const [typeField, , tensor] of fields(value)) {
      if (typeField !== TYPE_TENSOR || !(tensor instanceof Uint8Array)) continue;
      for (const [tensorField, , part] of fields(tensor)) {
        if (tensorField === TENSOR_TYPE_ELEM_TYPE && typeof part === "number") info.elementType = part;
        if (tensorField !== TENSOR_TYPE_SHAPE || !(part instanceof Uint8Array)) continue;
        info.dims = [];
        for (const [shapeField, , dim] of fields(part)) {
          if (shapeField !== SHAPE_DIM || !(dim instanceof Uint8Array)) continue;
          let size = null; // unknown, or named (dim_param): a dynamic dimension
          for (const [dimField, , d] of fields(dim)) {
            if (dimField === DIM_VALUE && typeof d === "number") size = d;
            if (dimField === DIM_PARAM) size = null;
          }
          info.dims.push(size);
        }
      }
    }
  }
  return info;
}

/**
 * @typedef {{name: string, elementType: number, dims: (number|null)[] | null}} ValueInfo
 * @typedef {{irVersion: number, metadata: Record<string, string>, inputs: ValueInfo[], outputs: ValueInfo[]}} OnnxFile
 */

/**
 * The metadata and the graph's inputs and outputs (those that are not initializers) of an ONNX file.
 * @param {Uint8Array} bytes
 * @param {string} source
 * @returns {OnnxFile}
 */
export function readOnnx(bytes, source) {
  try {
    let irVersion = 0;
    let graph = null;
    const metadata = Object.create(null);
    for (const [field, wire, value] of fields(bytes)) {
      if (field === MODEL_IR_VERSION && wire === VARINT) irVersion = value;
      if (field === MODEL_GRAPH && value instanceof Uint8Array) graph = value;
      if (field === MODEL_METADATA_PROPS && value instanceof Uint8Array) {
        let key = "";
        let entry = "";
        for (const [entryField, , part] of fields(value)) {
          if (entryField === ENTRY_KEY) key = text(part);
          if (entryField === ENTRY_VALUE) entry = text(part);
        }
        metadata[key] = entry;
      }
    }
    if (irVersion < 1 || graph === null) throw new Malformed("no ir_version or no graph");
    const inputs = [];
    const outputs = [];
    const initializers = new Set();
    for (const [field, , value] of fields(graph)) {
      if (!(value instanceof Uint8Array)) continue;
      if (field === GRAPH_INPUT) inputs.push(valueInfo(value));
      if (field === GRAPH_OUTPUT) outputs.push(valueInfo(value));
      if (field === GRAPH_INITIALIZER) {
        for (const [tensorField, , name] of fields(value)) if (tensorField === TENSOR_NAME) initializers.add(text(name));
      }
    }
    return { irVersion, metadata: { ...metadata }, inputs: inputs.filter((v) => !initializers.has(v.name)), outputs };
  } catch (error) {
    if (!(error instanceof Malformed)) throw error;
    throw new ModelFileError(`${source}: not an ONNX model file (${error.message})`);
  }
}
