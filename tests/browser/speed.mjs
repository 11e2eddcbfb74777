// CLIP Lens against transformers.js in the same headless Chromium, on the same
// weights: time from navigation to a ready model (cold: a fresh context with
// empty caches; warm: a reload) and the Speed page's plan (image embedding at
// each batch size, the text tower), on WebGPU and on each one's CPU path
// (CLIP Lens' Flex fallback, transformers.js' WASM). Run by `cliplens bench
// browser` (src/cli/bench_browser.rs), which prints the table; this script
// prints one JSON object.
//
//   node tests/browser/speed.mjs SPEC.json
//
// SPEC: { dist, headers, chromium, model (Hugging Face layout: CLIP Lens loads
//         it through the stand-in Hub, quantizing to int8 as for any Hub model),
//         onnx (tests/bench/export_onnx.py's output for the same checkpoint),
//         node_modules (tests/bench/node_modules), devices: ["webgpu", "cpu"],
//         contenders: ["cliplens", "transformers.js"], loads, dtype,
//         plan: { batches, texts, runs } }
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serveAll } from './serve.mjs';

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const REPO = 'bench/clip';
const LOAD_TIMEOUT = 1_800_000;
const log = (line) => process.stderr.write(`${line}\n`);

async function launch(device) {
  const args = ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
  args.push(device === 'webgpu' ? '--enable-unsafe-webgpu' : '--disable-blink-features=WebGPU');
  return chromium.launch({ executablePath: spec.chromium, headless: false, args });
}

/** transformers.js' page, its runtime from npm and the ONNX export, on one origin of their own. */
async function serveTransformersJs() {
  const tjs = path.join(spec.node_modules, '@huggingface/transformers/dist');
  const ort = path.join(spec.node_modules, 'onnxruntime-web/dist');
  const here = path.join(path.dirname(new URL(import.meta.url).pathname), '../bench');
  const routes = [['/tjs/', tjs], ['/ort/', ort], ['/models/bench/', spec.onnx]];
  const types = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let file = null;
    if (url.pathname === '/') file = path.join(here, 'tjs.html');
    else if (url.pathname === '/tjs-bench.mjs') file = path.join(here, 'tjs-bench.mjs');
    for (const [prefix, dir] of routes) {
      if (url.pathname.startsWith(prefix)) file = path.join(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
    }
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/**
 * One contender on one device: `open(page)` navigates and resolves when the
 * model is ready, `reload(page)` likewise for a warm load, `run(page)` times
 * the plan and returns the report, `describe(page)` says what it ran on.
 */
async function measure(device, { open, reload, run, describe }) {
  const browser = await launch(device);
  try {
    const timed = async (step) => {
      const start = Date.now();
      await step();
      return (Date.now() - start) / 1000;
    };
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => log(`  page error: ${e.message}`));
    const cold = [await timed(() => open(page))];
    const warm = [];
    for (let i = 0; i < spec.loads; i += 1) warm.push(await timed(() => reload(page)));
    for (let i = 1; i < spec.loads; i += 1) {
      const fresh = await (await browser.newContext()).newPage();
      cold.push(await timed(() => open(fresh)));
      await fresh.context().close();
    }
    log(`  ready: cold ${cold.map((s) => s.toFixed(1)).join(', ')} s; warm ${warm.map((s) => s.toFixed(1)).join(', ')} s`);
    const report = await run(page);
    return { cold_s: cold, warm_s: warm, report, ...(await describe(page)) };
  } catch (e) {
    return { error: String(e.message ?? e).split('\n')[0] };
  } finally {
    await browser.close();
  }
}

function clipLens(servers, device) {
  const hub = `${servers.base}hub`;
  const url = `${servers.base}?hub=${encodeURIComponent(hub)}&model=hub:${REPO}${device === 'cpu' ? '&backend=cpu' : ''}#speed`;
  const ready = (page) => page.waitForFunction((repo) => {
    const status = document.querySelector('#model-status')?.textContent ?? '';
    return status.startsWith(repo) && /: (int8|float32)/.test(status);
  }, REPO, { timeout: LOAD_TIMEOUT });
  return {
    async open(page) {
      await page.goto(url);
      // A Hub model named in the link is asked about first (its size); a visitor says yes.
      await page.click('#hub-ask-yes', { timeout: 60_000 });
      await ready(page);
    },
    async reload(page) {
      await page.reload();
      await ready(page);
    },
    async run(page) {
      await page.fill('#speed-batches', spec.plan.batches.join(', '));
      await page.fill('#speed-texts', String(spec.plan.texts));
      await page.fill('#speed-runs', String(spec.plan.runs));
      await page.click('#speed-run');
      await page.waitForFunction(() => document.querySelector('#speed-report[data-report]') || document.querySelector('#speed-error'), null, { timeout: LOAD_TIMEOUT });
      const error = await page.$('#speed-error');
      if (error) throw new Error(`the Speed page: ${await error.textContent()}`);
      return JSON.parse(await page.getAttribute('#speed-report', 'data-report')).report;
    },
    async describe(page) {
      return { backend: await page.textContent('#backend'), model: await page.textContent('#model-status') };
    },
  };
}

function transformersJs(tjs, device) {
  const url = `${tjs.base}?device=${device === 'cpu' ? 'wasm' : 'webgpu'}&dtype=${spec.dtype}&model=bench`;
  const ready = async (page) => {
    // A module that fails to load (a missing file) sets neither flag: its page error ends the wait.
    const failed = new Promise((_, reject) => page.once('pageerror', (e) => reject(new Error(`transformers.js page: ${e.message}`))));
    failed.catch(() => {});
    await Promise.race([page.waitForFunction(() => window.benchReady || window.benchError, null, { timeout: LOAD_TIMEOUT }), failed]);
    const error = await page.evaluate(() => window.benchError);
    if (error) throw new Error(`transformers.js: ${error}`);
  };
  return {
    async open(page) { await page.goto(url); await ready(page); },
    async reload(page) { await page.reload(); await ready(page); },
    run: (page) => page.evaluate((plan) => window.runBench(plan), spec.plan),
    async describe(page) {
      const ready = await page.evaluate(() => window.benchReady);
      return { backend: `${ready.device} (${ready.dtype}${ready.device === 'wasm' ? `, ${ready.threads ?? 1} thread(s)` : ''})` };
    },
  };
}

const servers = await serveAll(spec.dist, spec.headers, { [REPO]: { dir: spec.model } });
const tjs = await serveTransformersJs();
const results = [];
try {
  for (const device of spec.devices) {
    for (const contender of spec.contenders) {
      log(`${contender} on ${device}…`);
      const side = contender === 'cliplens' ? clipLens(servers, device) : transformersJs(tjs, device);
      const result = await measure(device, side);
      if (result.error) log(`  failed: ${result.error}`);
      results.push({ contender, device, ...result });
    }
  }
  const version = JSON.parse(fs.readFileSync(path.join(spec.node_modules, '@huggingface/transformers/package.json'), 'utf8')).version;
  const browser = await launch('cpu');
  const chromiumVersion = browser.version();
  await browser.close();
  console.log(JSON.stringify({ chromium: chromiumVersion, transformers_js: version, results }));
} finally {
  servers.close();
  tjs.close();
}
