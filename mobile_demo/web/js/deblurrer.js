// The exported deblurrer under LiteRT.js: loads the model its contract
// names, compiles one fixed-shape copy per image (or tile) size, and runs
// uint8 RGBA -> contract preprocessing -> tiles -> model -> blend ->
// contract postprocessing -> uint8 RGBA.

import { getWebGpuDevice, loadAndCompile, loadLiteRt, Tensor } from "@litertjs/core";

import * as contract from "./contract.js";
import { readSignature, withFixedShapes } from "./tflite_shapes.js";
import { padImage, processTiled, tiles } from "./tiling.js";

// keras_udd.deblur.deblur_image's defaults and keras_udd.deblur.STRIDE (the
// model's total downsampling): tests/test_web_demo.py checks they agree.
export const TILE_SIZE = 512;
export const TILE_OVERLAP = 64;
export const ALIGN = 4;
const CACHED_SIZES = 3; // Compiled fixed-shape models kept (LRU).

let runtime = null;

// Loads the LiteRT.js wasm once per page. Threads need a cross-origin
// isolated page (the server's COOP/COEP headers, on localhost or HTTPS).
async function loadRuntime(wasmUrl, threads) {
  if (!runtime) {
    const threaded = threads > 1 && self.crossOriginIsolated === true;
    runtime = loadLiteRt(wasmUrl, threaded ? { threads: true } : {}).then(() => ({
      threaded,
    }));
  }
  return runtime;
}

export class Deblurrer {
  // options: {contractUrl, wasmUrl, threads, accelerator: "auto"|"wasm"|"webgpu",
  //           tileSize, overlap}
  static async create(options) {
    const spec = await contract.loadContract(options.contractUrl);
    const response = await fetch(spec.modelUrl);
    if (!response.ok) {
      throw new contract.ContractError(
        `no model at ${spec.modelUrl} (HTTP ${response.status})`,
      );
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    const signature = readSignature(bytes, spec.signatureKey);
    for (const [side, tensor] of [
      ["inputs", spec.input],
      ["outputs", spec.output],
    ]) {
      if (signature[side][tensor.name] !== tensor.index) {
        throw new contract.ContractError(
          `the contract's ${side} ${tensor.name} (tensor ${tensor.index}) is not in ` +
            `the model's signature ${spec.signatureKey}: ${JSON.stringify(signature[side])}`,
        );
      }
    }
    const { threaded } = await loadRuntime(options.wasmUrl, options.threads);
    const accelerator = chooseAccelerator(options.accelerator ?? "auto");
    const deblurrer = new Deblurrer(spec, bytes, signature.subgraph, options);
    deblurrer.threads = threaded ? options.threads : 1;
    deblurrer.accelerator = accelerator;
    return deblurrer;
  }

  constructor(spec, bytes, subgraph, options) {
    this.contract = spec;
    this.bytes = bytes;
    this.subgraph = subgraph;
    this.tileSize = options.tileSize ?? TILE_SIZE;
    this.overlap = options.overlap ?? TILE_OVERLAP;
    this.compiled = new Map(); // "HxW" -> CompiledModel, least recent first.
  }

  get backend() {
    return this.accelerator === "webgpu"
      ? `WebGPU${this.partlyOnWasm ? " (some ops on wasm)" : ""}`
      : `wasm (XNNPACK, ${this.threads} thread${this.threads > 1 ? "s" : ""})`;
  }

  // The model compiled for one input size; `stats.compileMs` grows by the
  // time spent compiling.
  async modelFor(height, width, stats) {
    const key = `${height}x${width}`;
    let model = this.compiled.get(key);
    if (model) {
      this.compiled.delete(key);
      this.compiled.set(key, model);
      return model;
    }
    const start = performance.now();
    const { input, output } = this.contract;
    const bytes = withFixedShapes(this.bytes, this.subgraph, {
      [input.index]: contract.shapeFor(input, height, width),
      [output.index]: contract.shapeFor(output, height, width),
    });
    const options = { accelerator: this.accelerator };
    if (this.accelerator === "wasm") options.cpuOptions = { numThreads: this.threads };
    try {
      model = await loadAndCompile(bytes, options);
    } catch (error) {
      if (this.accelerator !== "webgpu") throw error;
      console.warn("WebGPU compilation failed, using wasm:", error);
      this.accelerator = "wasm";
      return this.modelFor(height, width, stats);
    }
    // On WebGPU, LiteRT.js runs ops it cannot delegate on wasm.
    this.partlyOnWasm = this.accelerator === "webgpu" && !model.isFullyAccelerated;
    stats.compileMs += performance.now() - start;
    this.compiled.set(key, model);
    while (this.compiled.size > CACHED_SIZES) {
      const [oldest, old] = this.compiled.entries().next().value;
      this.compiled.delete(oldest);
      old.delete();
    }
    return model;
  }

  // One H x W x 3 image (or tile) in the input range through the model.
  async runModel(image, stats) {
    const { input, output, signatureKey } = this.contract;
    const model = await this.modelFor(image.height, image.width, stats);
    const start = performance.now();
    const tensor = new Tensor(
      contract.toModelLayout(input, image),
      contract.shapeFor(input, image.height, image.width),
    );
    let results;
    try {
      results = await model.run(signatureKey, { [input.name]: tensor });
    } finally {
      tensor.delete();
    }
    const result = results[output.name];
    const host = result.accelerator === "wasm" ? result : await result.moveTo("wasm");
    const values = host.toTypedArray().slice();
    for (const t of new Set([...Object.values(results), host])) t.delete();
    stats.inferenceMs += performance.now() - start;
    stats.runs += 1;
    return contract.fromModelLayout(output, values, image.height, image.width);
  }

  // Tiles the image would be cut into (1 when it fits one tile).
  tileCount(height, width) {
    const h = Math.max(height, this.contract.minHeight);
    const w = Math.max(width, this.contract.minWidth);
    return tiles(h, w, this.tileSize, this.overlap, ALIGN).length;
  }

  // RGBA bytes [H, W, 4] -> {rgba, stats}; images smaller than the model's
  // minimum are edge-padded first, larger than a tile are tiled (as
  // keras_udd.deblur.deblur_image does).
  async deblur(rgba, height, width, progress) {
    const stats = { compileMs: 0, inferenceMs: 0, runs: 0, tiles: 0 };
    const start = performance.now();
    let image = contract.preprocess(this.contract.input, rgba, height, width);
    const h = Math.max(height, this.contract.minHeight);
    const w = Math.max(width, this.contract.minWidth);
    image = padImage(image, h, w, "edge");
    let out = await processTiled(
      image,
      (tile) => this.runModel(tile, stats),
      this.tileSize,
      this.overlap,
      ALIGN,
      (done, total) => {
        stats.tiles = total;
        progress?.(done, total);
      },
    );
    if (h !== height || w !== width) {
      out = cropTopLeft(out, height, width);
    }
    stats.totalMs = performance.now() - start;
    return { rgba: contract.postprocess(this.contract.output, out), stats };
  }
}

function cropTopLeft(image, height, width) {
  const data = new Float32Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    data.set(image.data.subarray(y * image.width * 3, (y * image.width + width) * 3), y * width * 3);
  }
  return { data, height, width, channels: 3 };
}

function chooseAccelerator(requested) {
  if (requested === "wasm") return "wasm";
  const device = getWebGpuDevice();
  if (requested === "webgpu" && !device) {
    throw new Error("WebGPU was requested, but this browser has no WebGPU adapter");
  }
  return device ? "webgpu" : "wasm";
}
