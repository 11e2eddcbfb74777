// The download footprint of a first visit, and the time from navigation to a
// ready model (cold: empty caches; warm: a reload, the model from Cache
// Storage). Run by `cliplens bench footprint` (src/cli/bench_footprint.rs),
// which prints the table; this script prints one JSON object.
//
//   node tests/browser/footprint.mjs SPEC.json
//
// SPEC: { dist, headers, chromium, mode: "webgpu" | "cpu", runs,
//         compare: [{ name, files: [path...] }] }
// Every file a first visit fetches from the app's origin is measured raw, as
// gzip -9 and as brotli -q 11 (what a server or CDN would send); `compare`
// lists other runtimes' files to measure the same way (transformers.js'
// JavaScript and onnxruntime-web's wasm from npm).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import { serveAll } from './serve.mjs';

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

function sizes(bytes) {
  return {
    raw: bytes.length,
    gzip: zlib.gzipSync(bytes, { level: 9 }).length,
    brotli: zlib.brotliCompressSync(bytes, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }).length,
  };
}

async function visit(servers) {
  const args = ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
  args.push(spec.mode === 'webgpu' ? '--enable-unsafe-webgpu' : '--disable-blink-features=WebGPU');
  const browser = await chromium.launch({ executablePath: spec.chromium, headless: false, args });
  try {
    const page = await (await browser.newContext()).newPage();
    // The server's log, not the page's events: Playwright does not see a dedicated worker's fetches.
    servers.reset();
    // Seconds from the start of `navigate` (a goto or a reload) until the model is ready.
    const timedLoad = async (target, navigate) => {
      const start = Date.now();
      await navigate();
      await target.waitForFunction(() => /: (int8|float32)/.test(document.querySelector('#model-status')?.textContent ?? ''), null, { timeout: 600_000 });
      return (Date.now() - start) / 1000;
    };
    const cold = [await timedLoad(page, () => page.goto(servers.base))];
    const status = await page.textContent('#model-status');
    const firstVisit = [...new Set(servers.log.app.map((p) => (p === '/' ? '/index.html' : p)))].sort();
    const warm = [];
    for (let i = 0; i < spec.runs; i += 1) warm.push(await timedLoad(page, () => page.reload()));
    // Cold again: a fresh context has empty caches.
    for (let i = 1; i < spec.runs; i += 1) {
      const fresh = await (await browser.newContext()).newPage();
      cold.push(await timedLoad(fresh, () => fresh.goto(servers.base)));
      await fresh.context().close();
    }
    const backend = await page.textContent('#backend');
    return { firstVisit, cold, warm, status, backend };
  } finally {
    await browser.close();
  }
}

const servers = await serveAll(spec.dist, spec.headers);
try {
  const v = await visit(servers);
  const files = v.firstVisit.map((p) => {
    const file = path.join(spec.dist, decodeURIComponent(p));
    return { path: p, ...sizes(fs.readFileSync(file)) };
  });
  const compare = (spec.compare ?? []).map((c) => ({
    name: c.name,
    files: c.files.map((f) => ({ path: path.basename(f), ...sizes(fs.readFileSync(f)) })),
  }));
  console.log(JSON.stringify({ mode: spec.mode, backend: v.backend, status: v.status, cold_s: v.cold, warm_s: v.warm, files, compare }));
} finally {
  servers.close();
}
