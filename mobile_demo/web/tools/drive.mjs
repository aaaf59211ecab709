// Drives the demo page in headless Chromium (playwright-core): used by
// tests/test_web_demo.py and bench/web_latency.py.
//
//   node mobile_demo/web/tools/drive.mjs JOB.json
//
// JOB: {"userDataDir": a fresh folder, "executablePath": "/usr/bin/chromium",
//       "timeoutMs": 60000,
//       "visits": [{"url": page URL, "steps": [STEP, ...]}, ...]}
// STEP: {"file": image path, "download": PNG path, "screenshot": PNG path}
//       (feeds the file to the page's file input; download and screenshot
//       optional) | {"bench": {"height": 256, "width": 256, "repeats": 5}}
//       | {"interactive": true} (bench commands from stdin, see below).
// Each visit loads the page afresh (LiteRT.js loads once per page). Prints
// one JSON line: {"visits": [{"load": {state, error, backend,
// crossOriginIsolated}, "steps": [{state, error, stats, download} | bench
// figures], "workers": web workers alive, "failure"?}], "console": [...]}.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = job.timeoutMs ?? 60000;
const log = [];
const result = { visits: [], console: log };
const context = await chromium.launchPersistentContext(job.userDataDir, {
  executablePath: job.executablePath ?? "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  acceptDownloads: true,
  viewport: { width: 1000, height: 900 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));
  for (const visit of job.visits) {
    const out = { steps: [] };
    result.visits.push(out);
    try {
      await runVisit(page, visit, out);
    } catch (error) {
      out.failure = String(error?.stack ?? error);
    }
  }
} finally {
  await context.close();
}
console.log(JSON.stringify(result));

async function runVisit(page, visit, out) {
  await page.goto(visit.url);
  await page.waitForFunction(() => ["ready", "error"].includes(window.demo?.state));
  out.load = await page.evaluate(() => ({
    state: window.demo.state,
    error: window.demo.error,
    visibleError: document.getElementById("error").hidden
      ? null
      : document.getElementById("error").textContent,
    backend: window.demo.deblurrer?.backend ?? null,
    crossOriginIsolated: self.crossOriginIsolated,
  }));
  for (const step of visit.steps ?? []) {
    if (step.bench) {
      out.steps.push(await page.evaluate(bench, step.bench));
      continue;
    }
    if (step.interactive) {
      await interactive(page, out);
      continue;
    }
    const before = await page.evaluate(() => window.demo.handled);
    await page.setInputFiles("#file", step.file);
    await page.waitForFunction((n) => window.demo.handled > n, before);
    const done = await page.evaluate(() => ({
      state: window.demo.state,
      error: window.demo.error,
      stats: window.demo.stats,
      visibleError: document.getElementById("error").hidden
        ? null
        : document.getElementById("error").textContent,
    }));
    if (step.download && done.state === "done") {
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.click("#download"),
      ]);
      await download.saveAs(step.download);
      done.download = step.download;
      done.suggestedFilename = download.suggestedFilename();
    }
    if (step.screenshot) await page.screenshot({ path: step.screenshot, fullPage: true });
    out.steps.push(done);
  }
  out.workers = page.workers().length; // Threaded wasm runs its threads in workers.
}

// {"interactive": true}: prints {"loaded": ...}, then for each JSON line
// read from stdin ({"height", "width", "repeats", "warmup"} as for "bench")
// prints {"bench": figures}, until {"quit": true} or the end of stdin. Lets
// a caller interleave page runs with its own (bench/web_latency.py).
async function interactive(page, out) {
  console.log(JSON.stringify({ loaded: out.load }));
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    if (command.quit) break;
    console.log(JSON.stringify({ bench: await page.evaluate(bench, command) }));
  }
  lines.close();
}

// In the page: median latency of the deblurrer on random images (the first
// call compiles the size and warms up).
async function bench({ height, width, repeats, warmup = true }) {
  const d = window.demo.deblurrer;
  const rgba = new Uint8ClampedArray(height * width * 4);
  for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 2654435761) >>> 24;
  const first = warmup ? await d.deblur(rgba, height, width) : null;
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const { stats } = await d.deblur(rgba, height, width);
    times.push(stats.inferenceMs);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    backend: d.backend,
    threads: d.threads,
    height,
    width,
    compileMs: first?.stats.compileMs ?? null,
    firstMs: first?.stats.inferenceMs ?? null,
    timesMs: times,
    medianMs: sorted[Math.floor(sorted.length / 2)],
  };
}
