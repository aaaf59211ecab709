// Fixes the input and output shapes of a TFLite flatbuffer, in a copy.
//
// LiteRT.js has no resizeInput: a model exported with a dynamic
// [1, -1, -1, 3] input fails when run. The exported deblurrer computes every
// other shape at run time from its input's, so writing [1, H, W, 3] into the
// input and output tensors' `shape` and `shape_signature` vectors (same
// length, overwritten in place, no re-layout) makes a fixed-size model that
// LiteRT.js compiles. Only the few tables of the TFLite schema
// (tensorflow/compiler/mlir/lite/schema/schema.fbs) needed to find those
// vectors are read.

const IDENTIFIER = "TFL3";
// Field ids in schema.fbs.
const MODEL = { subgraphs: 2, signatureDefs: 7 };
const SUBGRAPH = { tensors: 0 };
const TENSOR = { shape: 0, shapeSignature: 7 };
const SIGNATURE_DEF = { inputs: 0, outputs: 1, key: 2, subgraphIndex: 4 };
const TENSOR_MAP = { name: 0, tensorIndex: 1 };

export class ModelFormatError extends Error {}

class FlatBuffer {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u32(at) {
    if (at < 0 || at + 4 > this.bytes.byteLength) {
      throw new ModelFormatError("truncated or corrupt TFLite file");
    }
    return this.view.getUint32(at, true);
  }

  // Absolute position of field `id` of the table at `table`, or 0.
  field(table, id) {
    const vtable = table - this.view.getInt32(table, true);
    const size = this.view.getUint16(vtable, true);
    const slot = 4 + 2 * id;
    if (slot >= size) return 0;
    const offset = this.view.getUint16(vtable + slot, true);
    return offset ? table + offset : 0;
  }

  indirect(at) {
    return at + this.u32(at);
  }

  // The tables of a vector-of-tables field (empty when absent).
  tables(table, id) {
    const at = this.field(table, id);
    if (!at) return [];
    const start = this.indirect(at);
    const length = this.u32(start);
    return Array.from({ length }, (_, i) => this.indirect(start + 4 + 4 * i));
  }

  string(table, id) {
    const at = this.field(table, id);
    if (!at) return "";
    const start = this.indirect(at);
    const length = this.u32(start);
    return new TextDecoder().decode(this.bytes.subarray(start + 4, start + 4 + length));
  }

  // `{start, length}` of an int32 vector field (start of its elements), or null.
  intVector(table, id) {
    const at = this.field(table, id);
    if (!at) return null;
    const start = this.indirect(at);
    return { start: start + 4, length: this.u32(start) };
  }
}

function root(buffer) {
  if (buffer.bytes.byteLength < 8) {
    throw new ModelFormatError("not a TFLite model (file too short)");
  }
  const identifier = new TextDecoder().decode(buffer.bytes.subarray(4, 8));
  if (identifier !== IDENTIFIER) {
    throw new ModelFormatError(
      `not a TFLite model (file identifier "${identifier}", expected "${IDENTIFIER}")`,
    );
  }
  return buffer.indirect(0);
}

// `{subgraph, inputs: {name: tensor index}, outputs: {...}}` of signature `key`.
export function readSignature(bytes, key) {
  const buffer = new FlatBuffer(bytes);
  try {
    const model = root(buffer);
    const signatures = buffer.tables(model, MODEL.signatureDefs);
    const found = signatures.find((s) => buffer.string(s, SIGNATURE_DEF.key) === key);
    if (!found) {
      const keys = signatures.map((s) => buffer.string(s, SIGNATURE_DEF.key));
      throw new ModelFormatError(
        `the model has no signature "${key}" (it has ${JSON.stringify(keys)})`,
      );
    }
    const subgraphAt = buffer.field(found, SIGNATURE_DEF.subgraphIndex);
    const tensorMap = (id) =>
      Object.fromEntries(
        buffer.tables(found, id).map((t) => {
          const at = buffer.field(t, TENSOR_MAP.tensorIndex);
          return [buffer.string(t, TENSOR_MAP.name), at ? buffer.u32(at) : 0];
        }),
      );
    return {
      subgraph: subgraphAt ? buffer.u32(subgraphAt) : 0,
      inputs: tensorMap(SIGNATURE_DEF.inputs),
      outputs: tensorMap(SIGNATURE_DEF.outputs),
    };
  } catch (error) {
    if (error instanceof ModelFormatError) throw error;
    throw new ModelFormatError(`corrupt TFLite file (${error.message})`);
  }
}

// A copy of `bytes` in which the tensors `shapes` names ({tensor index:
// [dims]}) of subgraph `subgraph` have these fixed shapes.
export function withFixedShapes(bytes, subgraph, shapes) {
  const copy = bytes.slice();
  const buffer = new FlatBuffer(copy);
  try {
    const model = root(buffer);
    const subgraphs = buffer.tables(model, MODEL.subgraphs);
    if (subgraph >= subgraphs.length) {
      throw new ModelFormatError(`the model has no subgraph ${subgraph}`);
    }
    const tensors = buffer.tables(subgraphs[subgraph], SUBGRAPH.tensors);
    const patched = new Set();
    for (const [index, dims] of Object.entries(shapes)) {
      const tensor = tensors[Number(index)];
      if (tensor === undefined) {
        throw new ModelFormatError(`the model has no tensor ${index}`);
      }
      for (const id of [TENSOR.shape, TENSOR.shapeSignature]) {
        const vector = buffer.intVector(tensor, id);
        if (!vector) continue;
        if (vector.length !== dims.length) {
          throw new ModelFormatError(
            `tensor ${index} has rank ${vector.length}, expected ${dims.length}`,
          );
        }
        dims.forEach((d, i) => buffer.view.setInt32(vector.start + 4 * i, d, true));
        patched.add(vector.start);
      }
    }
    // A shape vector shared with another tensor (flatbuffer deduplication)
    // would be changed for that tensor too.
    for (const [index, tensor] of tensors.entries()) {
      if (String(index) in shapes) continue;
      const vector = buffer.intVector(tensor, TENSOR.shape);
      if (vector && patched.has(vector.start)) {
        throw new ModelFormatError(`tensor ${index} shares its shape vector`);
      }
    }
    return copy;
  } catch (error) {
    if (error instanceof ModelFormatError) throw error;
    throw new ModelFormatError(`corrupt TFLite file (${error.message})`);
  }
}
