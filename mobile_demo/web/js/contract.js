// The export's JSON contract (keras_udd/export/contract.py writes it beside each
// .tflite): which tensors to feed and read, their layout, colour order and
// value range, and the smallest image the model takes. The page reads it at
// run time; the mapping below is the one mobile_demo/contract.py implements
// (uint8 0-255 -> the input range; output range -> uint8, rounded).

export class ContractError extends Error {}

function need(value, what) {
  if (value === undefined || value === null) {
    throw new ContractError(`the contract has no ${what}`);
  }
  return value;
}

function tensorSpec(entry, what) {
  need(entry, what);
  const layout = need(entry.layout, `${what} layout`);
  const axes = Object.fromEntries([..."NHWC"].map((a) => [a, layout.indexOf(a)]));
  if (layout.length !== 4 || Object.values(axes).some((i) => i < 0)) {
    throw new ContractError(`${what}: unsupported layout "${layout}"`);
  }
  const dtype = need(entry.dtype, `${what} dtype`);
  if (dtype !== "float32") {
    throw new ContractError(`${what}: dtype ${dtype}, this page feeds float32`);
  }
  const color = need(entry.color, `${what} color`);
  if (color !== "RGB" && color !== "BGR") {
    throw new ContractError(`${what}: unsupported colour order ${color}`);
  }
  const [low, high] = need(entry.range, `${what} range`).map(Number);
  if (!(high > low)) throw new ContractError(`${what}: bad range`);
  return {
    name: need(entry.name, `${what} name`),
    index: need(entry.index, `${what} index`),
    shape: need(entry.shape, `${what} shape`),
    layout,
    axes,
    rgbOrder: color === "RGB" ? [0, 1, 2] : [2, 1, 0],
    low,
    high,
  };
}

// Parses and checks a contract document; `url` resolves the model file.
export function parseContract(document, url) {
  if (typeof document !== "object" || document === null) {
    throw new ContractError("the contract is not a JSON object");
  }
  if (document.artifact !== "tflite") {
    throw new ContractError(`contract of a "${document.artifact}", not of a TFLite model`);
  }
  const inputs = need(document.inputs, "inputs");
  const outputs = need(document.outputs, "outputs");
  if (inputs.length !== 1 || outputs.length !== 1) {
    throw new ContractError("expected one input and one output tensor");
  }
  const sizes = need(document.sizes, "sizes");
  return {
    version: document.contract_version,
    file: need(document.file, "file"),
    modelUrl: new URL(document.file, url).href,
    quantization: document.quantization ?? "?",
    signatureKey: need(document.signature_key, "signature_key"),
    batch: document.batch ?? 1,
    input: tensorSpec(inputs[0], "input"),
    output: tensorSpec(outputs[0], "output"),
    minHeight: need(sizes.min_height, "sizes.min_height"),
    minWidth: need(sizes.min_width, "sizes.min_width"),
  };
}

export async function loadContract(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new ContractError(`no contract at ${url} (HTTP ${response.status})`);
  }
  let document;
  try {
    document = await response.json();
  } catch (error) {
    throw new ContractError(`the contract ${url} is not valid JSON (${error.message})`);
  }
  return parseContract(document, new URL(url, location.href));
}

// The model's [N, H, W, C] shape in its layout order.
export function shapeFor(spec, height, width) {
  const dims = [0, 0, 0, 0];
  dims[spec.axes.N] = 1;
  dims[spec.axes.H] = height;
  dims[spec.axes.W] = width;
  dims[spec.axes.C] = 3;
  return dims;
}

// RGBA bytes (canvas ImageData) -> {data: H x W x 3 float32 RGB in the
// input range}.
export function preprocess(spec, rgba, height, width) {
  const data = new Float32Array(height * width * 3);
  const scale = (spec.high - spec.low) / 255;
  for (let p = 0; p < height * width; p++) {
    for (let k = 0; k < 3; k++) data[p * 3 + k] = rgba[p * 4 + k] * scale + spec.low;
  }
  return { data, height, width, channels: 3 };
}

// H x W x 3 RGB float32 in the output range -> RGBA bytes, clipped and
// rounded to the nearest level.
export function postprocess(spec, image) {
  const { height, width, data } = image;
  const rgba = new Uint8ClampedArray(height * width * 4);
  const scale = 255 / (spec.high - spec.low);
  for (let p = 0; p < height * width; p++) {
    for (let k = 0; k < 3; k++) {
      const v = Math.min(Math.max(data[p * 3 + k], spec.low), spec.high);
      rgba[p * 4 + k] = Math.round((v - spec.low) * scale);
    }
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

// H x W x 3 RGB (internal) <-> the model's layout and colour order.
export function toModelLayout(spec, image) {
  const { height, width, data } = image;
  const dims = shapeFor(spec, height, width);
  const strides = [0, 0, 0, 0];
  for (let i = 3, s = 1; i >= 0; s *= dims[i], i--) strides[i] = s;
  const sh = strides[spec.axes.H];
  const sw = strides[spec.axes.W];
  const sc = strides[spec.axes.C];
  const out = new Float32Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * 3;
      for (let k = 0; k < 3; k++) out[y * sh + x * sw + spec.rgbOrder[k] * sc] = data[from + k];
    }
  }
  return out;
}

export function fromModelLayout(spec, values, height, width) {
  const dims = shapeFor(spec, height, width);
  const strides = [0, 0, 0, 0];
  for (let i = 3, s = 1; i >= 0; s *= dims[i], i--) strides[i] = s;
  const sh = strides[spec.axes.H];
  const sw = strides[spec.axes.W];
  const sc = strides[spec.axes.C];
  const data = new Float32Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const to = (y * width + x) * 3;
      for (let k = 0; k < 3; k++) data[to + k] = values[y * sh + x * sw + spec.rgbOrder[k] * sc];
    }
  }
  return { data, height, width, channels: 3 };
}
