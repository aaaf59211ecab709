// The page: pick, drop or take a photo, deblur it on this device, compare
// before/after with a slider, download the result.
//
// URL parameters (all optional): contract=<URL of the model's JSON
// contract> (default model/deblurrer_float32.json, served from the
// server's --model-dir), threads=<n>, accelerator=auto|wasm|webgpu,
// tile=<px>, overlap=<px>. `document.body.dataset.state` is loading, ready,
// running, done or error (tests wait on it).

import { Deblurrer, TILE_OVERLAP, TILE_SIZE } from "./deblurrer.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const intParam = (name, fallback) => {
  const value = Number.parseInt(params.get(name) ?? "", 10);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

const options = {
  contractUrl: new URL(params.get("contract") ?? "model/deblurrer_float32.json", location.href)
    .href,
  wasmUrl: new URL("node_modules/@litertjs/core/wasm/", location.href).href,
  threads: intParam("threads", Math.min(navigator.hardwareConcurrency || 1, 4)),
  accelerator: params.get("accelerator") ?? "auto",
  tileSize: intParam("tile", TILE_SIZE),
  overlap: Number.parseInt(params.get("overlap") ?? String(TILE_OVERLAP), 10),
};

const demo = { state: "loading", deblurrer: null, stats: null, error: null, handled: 0 };
window.demo = demo;

function setState(state, message) {
  demo.state = state;
  document.body.dataset.state = state;
  if (message !== undefined) $("status").textContent = message;
}

function showError(message) {
  demo.error = message;
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  demo.error = null;
  $("error").hidden = true;
  $("error").textContent = "";
}

async function init() {
  try {
    const deblurrer = await Deblurrer.create(options);
    demo.deblurrer = deblurrer;
    const c = deblurrer.contract;
    $("backend").textContent = `backend: ${deblurrer.backend}`;
    $("model").textContent = `model: ${c.file} (${c.quantization}, contract v${c.version})`;
    setState("ready", "Ready: choose a photo.");
  } catch (error) {
    console.error(error);
    setState("error", "The model could not be loaded.");
    showError(`Could not load the model: ${error.message ?? error}`);
  }
}

// The file's pixels as RGBA bytes, upright (EXIF orientation applied), as
// decoded: no colour-space conversion, so that they match Pillow's.
async function decode(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "from-image",
    });
  } catch {
    throw new Error(`${file.name} is not an image this browser can read (or it is corrupt).`);
  }
  const canvas = $("before");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  return { rgba: pixels.data, width: canvas.width, height: canvas.height };
}

// Both canvases at one display size: the largest that fits the page width
// and 70% of the window height (small images enlarged, pixelated).
function fitCompare() {
  const before = $("before");
  if (!before.width) return;
  const room = Math.min(document.querySelector("main").clientWidth, before.width * 8);
  const scale = Math.min(room / before.width, (0.7 * innerHeight) / before.height);
  for (const canvas of [before, $("after")]) {
    canvas.style.width = `${Math.round(before.width * scale)}px`;
    canvas.style.height = `${Math.round(before.height * scale)}px`;
  }
}

function showResult(rgba, width, height) {
  const canvas = $("after");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
  $("compare").classList.toggle("small", Math.max(width, height) < 256);
  $("result").hidden = false;
  fitCompare();
}

function showStats(stats, width, height) {
  const rows = [
    ["size", `${width} × ${height} px`],
    ["tiles", `${stats.tiles}${stats.tiles > 1 ? ` (${options.tileSize} px, overlap ${options.overlap})` : ""}`],
    ["latency", `${stats.inferenceMs.toFixed(0)} ms inference`],
    ["compile", `${stats.compileMs.toFixed(0)} ms (once per size)`],
    ["total", `${stats.totalMs.toFixed(0)} ms`],
    ["backend", demo.deblurrer.backend],
  ];
  $("stats").replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      dd.dataset.key = k;
      return [dt, dd];
    }),
  );
  $("backend").textContent = `backend: ${demo.deblurrer.backend}`;
}

let downloadUrl = null;

async function setDownload(name) {
  const blob = await new Promise((resolve) => $("after").toBlob(resolve, "image/png"));
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(blob);
  const link = $("download");
  link.href = downloadUrl;
  link.download = `${name.replace(/\.[^.]*$/, "") || "photo"}-deblurred.png`;
}

async function handle(file) {
  if (!file) return;
  if (demo.state === "running") return;
  if (!demo.deblurrer) {
    showError("The model is not loaded, so nothing can be deblurred.");
    demo.handled += 1;
    return;
  }
  clearError();
  $("result").hidden = true;
  $("download").removeAttribute("href");
  setState("running", `Reading ${file.name}…`);
  try {
    const { rgba, width, height } = await decode(file);
    const count = demo.deblurrer.tileCount(height, width);
    const progress = $("progress");
    progress.hidden = count < 2;
    progress.max = count;
    progress.value = 0;
    setState("running", `Deblurring ${width} × ${height} px${count > 1 ? ` in ${count} tiles` : ""}…`);
    await new Promise(requestAnimationFrame); // Let the message paint.
    const result = await demo.deblurrer.deblur(rgba, height, width, (done, total) => {
      progress.value = done;
      $("status").textContent = `Deblurring: tile ${done} of ${total}…`;
    });
    progress.hidden = true;
    showResult(result.rgba, width, height);
    showStats(result.stats, width, height);
    await setDownload(file.name);
    demo.stats = { ...result.stats, width, height };
    setState("done", `Done: ${result.stats.inferenceMs.toFixed(0)} ms on ${demo.deblurrer.backend}.`);
  } catch (error) {
    console.error(error);
    $("progress").hidden = true;
    showError(error.message ?? String(error));
    setState("error", "Choose another photo.");
  } finally {
    demo.handled += 1;
  }
}

for (const id of ["file", "camera"]) {
  $(id).addEventListener("change", (event) => {
    handle(event.target.files[0]);
    event.target.value = ""; // Picking the same file again fires again.
  });
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  handle(event.dataTransfer.files[0]);
});

function setSplit(percent) {
  const at = `${percent}%`;
  $("after").style.clipPath = `inset(0 0 0 ${at})`;
  $("divider").style.left = at;
}

$("slider").addEventListener("input", (event) => setSplit(event.target.value));
// Dragging on the images moves the split too.
$("compare").addEventListener("pointermove", (event) => {
  if (event.pointerType === "mouse" && event.buttons !== 1) return;
  const box = event.currentTarget.getBoundingClientRect();
  const percent = Math.round(Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1) * 100);
  $("slider").value = percent;
  setSplit(percent);
});
addEventListener("resize", fitCompare);

init();
