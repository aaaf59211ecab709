// Large images in overlapping, blended tiles: a line-by-line port of
// keras_udd/tiling.py (same tile starts, alignment, raised-cosine blend
// weights and reflect padding), so that the page and
// `python -m keras_udd.deblur` cut and blend an image the same way.
// Images are {data: Float32Array (H x W x C, row-major), height, width,
// channels}.

export function tileStarts(length, tile, overlap) {
  if (length <= tile) return [0];
  if (!(overlap >= 0 && overlap < tile)) {
    throw new RangeError(`overlap must be in [0, ${tile}), got ${overlap}`);
  }
  const starts = [];
  for (let s = 0; s < length - tile; s += tile - overlap) starts.push(s);
  starts.push(length - tile);
  return starts;
}

// [size] weights: a raised cosine from ~0 to 1 over the first and last
// `overlap` samples (1 elsewhere), strictly positive; float32 like numpy's.
export function blendWindow(size, overlap) {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const ramp = overlap <= 0 ? 1 : Math.min(Math.min(i + 0.5, size - i - 0.5) / overlap, 1);
    out[i] = overlap <= 0 ? 1 : 0.5 - 0.5 * Math.cos(Math.PI * ramp);
  }
  return out;
}

export function aligned(tileSize, overlap, align) {
  tileSize = Math.max(Math.floor(tileSize / align), 1) * align;
  return [tileSize, Math.min(Math.ceil(overlap / align) * align, tileSize - align)];
}

const padding = (length, align) => (align - (length % align)) % align;

// [y, x, h, w] of the tiles covering an image, row by row.
export function tiles(height, width, tileSize, overlap, align = 1) {
  if (height <= tileSize && width <= tileSize) return [[0, 0, height, width]];
  height += padding(height, align);
  width += padding(width, align);
  [tileSize, overlap] = aligned(tileSize, overlap, align);
  const th = Math.min(tileSize, height);
  const tw = Math.min(tileSize, width);
  const boxes = [];
  for (const y of tileStarts(height, th, overlap)) {
    for (const x of tileStarts(width, tw, overlap)) boxes.push([y, x, th, tw]);
  }
  return boxes;
}

// numpy.pad index mapping for "reflect" (edge not repeated) and "symmetric".
function padIndex(i, n, mode) {
  if (n === 1) return 0;
  const period = mode === "reflect" ? 2 * (n - 1) : 2 * n;
  i %= period;
  if (mode === "reflect") return i < n ? i : period - i;
  return i < n ? i : period - 1 - i;
}

// The image padded at the bottom/right to `height` x `width` (numpy modes
// "reflect", "symmetric" or "edge").
export function padImage(image, height, width, mode) {
  if (height === image.height && width === image.width) return image;
  const { channels: c } = image;
  const data = new Float32Array(height * width * c);
  for (let y = 0; y < height; y++) {
    const sy = mode === "edge" ? Math.min(y, image.height - 1) : padIndex(y, image.height, mode);
    for (let x = 0; x < width; x++) {
      const sx = mode === "edge" ? Math.min(x, image.width - 1) : padIndex(x, image.width, mode);
      const from = (sy * image.width + sx) * c;
      data.set(image.data.subarray(from, from + c), (y * width + x) * c);
    }
  }
  return { data, height, width, channels: c };
}

export function crop(image, y, x, h, w) {
  const { channels: c } = image;
  const data = new Float32Array(h * w * c);
  for (let r = 0; r < h; r++) {
    const from = ((y + r) * image.width + x) * c;
    data.set(image.data.subarray(from, from + w * c), r * w * c);
  }
  return { data, height: h, width: w, channels: c };
}

// `fn` (async, one tile -> same size) applied to `image` in tiles, as
// keras_udd.tiling.process_tiled with batch_size 1. `progress(done, total)`
// is called after each tile.
export async function processTiled(image, fn, tileSize, overlap, align = 1, progress) {
  if (!(tileSize >= 1 && align >= 1)) throw new RangeError("tileSize and align must be >= 1");
  if (!(overlap >= 0 && overlap < tileSize)) {
    throw new RangeError(`overlap must be in [0, tileSize), got ${overlap}`);
  }
  const { height, width } = image;
  if (height <= tileSize && width <= tileSize) {
    const out = await fn(image);
    progress?.(1, 1);
    return out;
  }
  const boxes = tiles(height, width, tileSize, overlap, align);
  [tileSize, overlap] = aligned(tileSize, overlap, align);
  const mode = Math.min(height, width) > align ? "reflect" : "symmetric";
  const padded = padImage(
    image,
    height + padding(height, align),
    width + padding(width, align),
    mode,
  );
  const [, , th, tw] = boxes[0];
  const wy = blendWindow(th, overlap);
  const wx = blendWindow(tw, overlap);
  const weight = new Float32Array(th * tw);
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) weight[y * tw + x] = wy[y] * wx[x];
  let total = null;
  let weightSum = null;
  let c = 0;
  for (const [i, [y0, x0, h, w]] of boxes.entries()) {
    const out = await fn(crop(padded, y0, x0, h, w));
    if (total === null) {
      c = out.channels;
      total = new Float32Array(padded.height * padded.width * c);
      weightSum = new Float32Array(padded.height * padded.width);
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const wgt = weight[y * w + x];
        const at = (y0 + y) * padded.width + x0 + x;
        weightSum[at] += wgt;
        for (let k = 0; k < c; k++) total[at * c + k] += Math.fround(out.data[(y * w + x) * c + k] * wgt);
      }
    }
    progress?.(i + 1, boxes.length);
  }
  const data = new Float32Array(height * width * c);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = y * padded.width + x;
      for (let k = 0; k < c; k++) data[(y * width + x) * c + k] = total[at * c + k] / weightSum[at];
    }
  }
  return { data, height, width, channels: c };
}
