// Browser tests of the built web app in Debian's chromium, on WebGPU
// (SwiftShader) and with WebGPU disabled (the CPU fallback). Run by
// tests/browser.rs, which builds the app and writes the plan (argv[2]):
// inputs, and the native CLI's `embed --json` output to match.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import { serve, trunkCsp } from './serve.mjs';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
fs.writeFileSync(plan.huge_png, hugePng(20000));
const TOLERANCE = 1e-3;
let failures = 0;

/** A valid side x side one-bit grayscale PNG (tens of kB for 400 megapixels). */
function hugePng(side) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // 1 bit per pixel, grayscale
  const raw = Buffer.alloc((1 + side / 8) * side); // filter byte + pixels, all zero
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0)),
  ]);
}

function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
  return ok;
}

/** Resident memory (bytes) of chromium's renderer processes, which hold the tab and its worker. */
function rendererBytes() {
  let total = 0;
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer')) continue;
      const rss = fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1];
      total += Number(rss) * 4096;
    } catch { /* the process ended */ }
  }
  return total;
}

/** Rows of the similarity table: name -> { values, error }. */
async function readTable(page) {
  return page.evaluate(() => {
    const prompts = [...document.querySelectorAll('#similarity th.prompt')].map((th) => th.textContent.replace(/ [▲▼]$/, ''));
    const rows = {};
    for (const tr of document.querySelectorAll('#similarity tbody tr')) {
      rows[tr.dataset.name] = {
        values: [...tr.querySelectorAll('td.value')].map((td) => Number(td.dataset.value)),
        error: tr.querySelector('.item-error')?.textContent ?? null,
      };
    }
    const problems = [...document.querySelectorAll('.prompt-problem')].map((li) => li.textContent);
    return { prompts, rows, problems };
  });
}

async function waitForCounts(page, total, timeout) {
  await page.waitForFunction((n) => {
    const m = document.querySelector('#counts')?.textContent.match(/^(\d+) images?: (\d+) embedded, (\d+) could not/);
    return m && Number(m[1]) === n && Number(m[2]) + Number(m[3]) === n;
  }, total, { timeout, polling: 250 });
  return page.textContent('#counts');
}

/** The table's similarities equal the native CLI's `embed --json` ones. */
function checkAgainstCli(table, tag) {
  check(JSON.stringify(table.prompts) === JSON.stringify(plan.expected.texts), `${tag} prompt columns are the CLI's prompts`);
  let worst = 0;
  let worstAt = '';
  let compared = 0;
  plan.expected.images.forEach((image, i) => {
    const row = table.rows[path.basename(image)];
    if (!row) { check(false, `${tag} row for ${path.basename(image)}`); return; }
    plan.expected.similarity[i].forEach((want, j) => {
      const diff = Math.abs((row.values[j] ?? NaN) - want);
      const size = Number.isFinite(diff) ? diff : Infinity;
      if (size > worst) { worst = size; worstAt = `${path.basename(image)} x "${plan.prompts[j]}"`; }
      compared += 1;
    });
  });
  check(compared === plan.images.length * plan.prompts.length && worst <= TOLERANCE,
    `${tag} ${compared} similarities match the CLI's --json (worst |diff| ${worst.toExponential(2)} at ${worstAt}, limit ${TOLERANCE})`);
}

const statusMatches = (page, pattern) => page.waitForFunction(
  (source) => new RegExp(source).test(document.querySelector('#model-status')?.textContent ?? ''),
  pattern.source, { timeout: 120_000 });

/**
 * A model from the (stand-in) Hugging Face Hub: fetched, quantized in the worker,
 * equal to the CLI's int8 numbers, cached for the next visit, listed again; a
 * download whose sha256 differs from the ETag and a repository without
 * safetensors each get a clear message.
 */
async function hubChecks(page, base, mode, requests) {
  const tag = `[${mode}] hub:`;
  const hub = `${base}hub`;
  await page.goto(`${base}?hub=${encodeURIComponent(hub)}`);
  await statusMatches(page, /world-clip: int8/);
  await page.fill('#hub-id', 'cliplens/world-clip');
  await page.click('#hub-load');
  await statusMatches(page, /^cliplens\/world-clip: int8|could not load/);
  const status = await page.textContent('#model-status');
  check(/^cliplens\/world-clip: int8/.test(status) && /sha256 checked/.test(status) && /quantized to int8 in this tab/.test(status), `${tag} fetched, checked and quantized: "${status}"`);
  await page.fill('#prompts', plan.prompts.join('\n'));
  await page.click('#compare');
  await page.setInputFiles('#image-files', plan.images);
  await waitForCounts(page, plan.images.length, 300_000);
  await page.waitForFunction((n) => document.querySelectorAll('#similarity th.prompt').length === n, plan.prompts.length, { timeout: 120_000 });
  checkAgainstCli(await readTable(page), tag);

  // The next visit takes it from the cache: no request to the Hub at all.
  const before = requests.filter((r) => r.url.includes('/hub/')).length;
  await page.goto(`${base}?hub=${encodeURIComponent(hub)}&model=hub:cliplens/world-clip`);
  await statusMatches(page, /^cliplens\/world-clip: int8.*from this browser's cache/);
  const after = requests.filter((r) => r.url.includes('/hub/')).length;
  check(after === before, `${tag} a reload loads it from the cache (${after - before} Hub requests)`);
  const options = await page.$$eval('#model-select option', (os) => os.map((o) => o.textContent));
  check(options.some((o) => o.startsWith('world-judge')) && options.some((o) => o.startsWith('cliplens/world-clip (Hugging Face')),
    `${tag} the model list has the site's models and the fetched one: ${options.join(' | ')}`);

  for (const [repo, expect] of [['cliplens/tampered', /does not match/], ['cliplens/no-weights', /has no model\.safetensors/]]) {
    await page.fill('#hub-id', repo);
    await page.click('#hub-load');
    await statusMatches(page, new RegExp(`could not load.*${repo}`));
    const message = await page.textContent('#model-status');
    check(expect.test(message), `${tag} ${repo}: "${message}"`);
  }
  // The damaged download was not kept: asking again downloads again.
  const tamperedBefore = requests.filter((r) => r.url.includes('/hub/cliplens/tampered/resolve/main/model.safetensors')).length;
  await page.fill('#hub-id', 'cliplens/tampered');
  await page.click('#hub-load');
  await statusMatches(page, /could not load.*cliplens\/tampered/);
  const tamperedAfter = requests.filter((r) => r.url.includes('/hub/cliplens/tampered/resolve/main/model.safetensors')).length;
  check(tamperedAfter === tamperedBefore + 1, `${tag} a damaged download is not cached (${tamperedAfter - tamperedBefore} new download)`);
}

/** Cancel stops an image job part-way; the rest shows as cancelled, and Resume finishes it. */
async function cancelChecks(page, mode) {
  const tag = `[${mode}] cancel:`;
  await page.click('#clear');
  await page.setInputFiles('#image-folder', plan.folder);
  await page.waitForFunction(() => {
    const m = document.querySelector('#counts')?.textContent.match(/: (\d+) embedded/);
    return m && Number(m[1]) >= 32;
  }, null, { timeout: 300_000, polling: 100 });
  await page.click('.job button');
  await page.waitForSelector('#resume', { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelectorAll('.job').length === 0, null, { timeout: 60_000 });
  const counts = await page.textContent('#counts');
  const m = counts.match(/^(\d+) images: (\d+) embedded, (\d+) could not be read, (\d+) cancelled/);
  check(m && Number(m[1]) === plan.folder_count && Number(m[2]) < plan.folder_count && Number(m[2]) + Number(m[4]) === plan.folder_count,
    `${tag} the job stopped part-way: "${counts}"`);
  await page.click('#resume');
  const resumed = await waitForCounts(page, plan.folder_count, 600_000);
  check(resumed === `${plan.folder_count} images: ${plan.folder_count} embedded, 0 could not be read`, `${tag} Resume finished the rest: "${resumed}"`);
}

/**
 * The compute worker dies mid-session (as when the GPU device is lost and burn
 * panics): the page starts a new one on the CPU, says why, reloads the model and
 * redoes the embeddings, which still equal the CLI's.
 */
async function crashChecks(page, mode) {
  const tag = `[${mode}] worker crash:`;
  const worker = page.workers().find((w) => /worker/.test(w.url()));
  if (!check(Boolean(worker), `${tag} the compute worker is visible to the test`)) return;
  await page.click('nav a[href="#embed"]');
  await page.fill('#prompts', plan.prompts.join('\n'));
  await page.click('#compare');
  await page.click('#clear');
  await page.setInputFiles('#image-files', [...plan.images, ...plan.bad.map((b) => b.path)]);
  await waitForCounts(page, plan.images.length + plan.bad.length, 300_000);
  await worker.evaluate(() => setTimeout(() => { throw new Error('simulated GPU device loss'); }, 0));
  await page.waitForSelector('#backend[data-kind="cpu"]', { timeout: 120_000 });
  const badge = await page.textContent('#backend');
  check(/running on CPU: slower/.test(badge) && /simulated GPU device loss/.test(badge), `${tag} badge: "${badge}"`);
  await page.waitForFunction(() => document.querySelectorAll('.job').length === 0
    && /world-clip: int8/.test(document.querySelector('#model-status')?.textContent ?? ''), null, { timeout: 300_000, polling: 250 });
  const counts = await waitForCounts(page, plan.images.length + plan.bad.length, 300_000);
  check(counts.includes(`${plan.images.length} embedded, ${plan.bad.length} could not`), `${tag} the batch was redone: "${counts}"`);
  checkAgainstCli(await readTable(page), tag);
}

/** The record a CLIP Lens PNG carries (iTXt `cliplens:inversion`, uncompressed), or null. */
function pngRecord(bytes) {
  if (bytes.subarray(0, 8).toString('latin1') !== '\x89PNG\r\n\x1a\n') return null;
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.subarray(at + 4, at + 8).toString('latin1');
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'iTXt') {
      const keyEnd = data.indexOf(0);
      if (data.subarray(0, keyEnd).toString('latin1') === 'cliplens:inversion') {
        // keyword \0, compression flag, method, language \0, translated keyword \0, text
        let i = keyEnd + 3;
        i = data.indexOf(0, i) + 1;
        i = data.indexOf(0, i) + 1;
        return JSON.parse(data.subarray(i).toString('utf8'));
      }
    }
    at += 12 + length;
  }
  return null;
}

const studioStatus = (page) => page.textContent('#invert-status');
const stepOf = async (page) => Number((await studioStatus(page)).match(/step (\d+) of/)?.[1] ?? -1);

/**
 * The Inversion studio on the embedded model: a run streams previews and a
 * curve and ends at the CLI's similarity for the same settings; its PNG
 * downloads with the settings inside; Pause holds it; Cancel stops it within
 * a second; the gallery survives a reload.
 */
async function invertChecks(page, base, mode) {
  const tag = `[${mode}] invert:`;
  const want = plan.invert;
  await page.goto(`${base}#invert`);
  await statusMatches(page, /world-clip: int8/);
  await page.fill('#invert-prompt', want.prompt);
  await page.selectOption('#invert-preset', want.preset);
  await page.fill('#invert-seed', String(want.seed));
  await page.dispatchEvent('#invert-seed', 'change');
  await page.click('.advanced summary');
  await page.fill('#invert-steps', String(want.steps));
  await page.dispatchEvent('#invert-steps', 'change');
  await page.evaluate(() => {
    window.previewSources = new Set();
    new MutationObserver(() => {
      const img = document.querySelector('#invert-preview');
      if (img && !/done|cancelled/.test(document.querySelector('#invert-status')?.textContent ?? '')) window.previewSources.add(img.src);
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] });
  });
  const t0 = Date.now();
  await page.click('#invert-start');
  await page.waitForFunction(() => /done:|could not/.test(document.querySelector('#invert-status')?.textContent ?? ''), null, { timeout: 600_000 });
  const status = await studioStatus(page);
  const seconds = (Date.now() - t0) / 1000;
  const similarity = Number(status.match(/done: similarity ([\d.-]+)/)?.[1]);
  check(Number.isFinite(similarity) && Math.abs(similarity - want.cli.similarity) < 0.03,
    `${tag} ${want.steps} steps in ${seconds.toFixed(1)} s, similarity ${similarity} vs the CLI's ${want.cli.similarity.toFixed(4)} (limit 0.03): "${status}"`);
  const previews = await page.evaluate(() => window.previewSources.size);
  check(previews >= 2, `${tag} ${previews} live previews before the end`);
  const points = await page.getAttribute('#invert-curve polyline', 'points');
  check(points.trim().split(/\s+/).length === want.steps, `${tag} the curve has a point per step`);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('.gallery .item:first-child .download')]);
  const png = fs.readFileSync(await download.path());
  const record = pngRecord(png);
  check(record && record.settings.steps === want.steps && record.settings.seed === want.seed && record.description === want.prompt
    && Math.abs(record.similarity - similarity) < 1e-3 && download.suggestedFilename().endsWith('.png'),
    `${tag} the PNG (${png.length} bytes, "${download.suggestedFilename()}") carries its settings and similarity`);

  // Pause holds the job between steps; Resume lets it go on.
  await page.fill('#invert-steps', '5000');
  await page.dispatchEvent('#invert-steps', 'change');
  await page.click('#invert-start');
  await page.waitForFunction(() => Number(document.querySelector('#invert-status')?.textContent.match(/step (\d+) of/)?.[1]) >= 3, null, { timeout: 120_000 });
  await page.click('#invert-pause');
  await page.waitForFunction(() => /· paused/.test(document.querySelector('#invert-status')?.textContent ?? ''), null, { timeout: 60_000 });
  const held = await stepOf(page);
  await page.waitForTimeout(2000);
  const stillHeld = await stepOf(page);
  await page.click('#invert-pause');
  await page.waitForFunction((n) => Number(document.querySelector('#invert-status')?.textContent.match(/step (\d+) of/)?.[1]) > n, stillHeld, { timeout: 60_000 });
  check(held === stillHeld, `${tag} paused at step ${held} (still ${stillHeld} 2 s later), resumed after`);

  // Cancel: the job stops within a second and its image so far joins the gallery.
  const before = await page.$$eval('.gallery .item', (items) => items.length);
  const t1 = Date.now();
  await page.click('#invert-cancel');
  await page.waitForFunction(() => /cancelled/.test(document.querySelector('#invert-status')?.textContent ?? ''), null, { timeout: 30_000 });
  const stopMs = Date.now() - t1;
  await page.waitForFunction((n) => document.querySelectorAll('.gallery .item').length === n, before + 1, { timeout: 60_000 });
  const stopped = await studioStatus(page);
  check(/cancelled after \d+ steps; the image so far is in the gallery/.test(stopped), `${tag} "${stopped}"`);
  check(stopMs < 1000, `${tag} cancelled in ${stopMs} ms (limit 1000); the image so far joined the gallery`);
  const after = before + 1;

  // Side by side: two results and the settings they differ in.
  await page.check('.gallery .item:nth-child(1) .compare');
  await page.check('.gallery .item:nth-child(2) .compare');
  const rows = await page.$$eval('#invert-compare tbody tr', (trs) => trs.map((tr) => tr.textContent));
  check(rows.some((r) => r.startsWith('steps')), `${tag} the comparison lists the settings that differ: ${rows.join(' | ')}`);

  // The gallery is kept in this browser.
  await page.reload();
  await page.waitForFunction((n) => document.querySelectorAll('.gallery .item').length === n, after, { timeout: 60_000 });
  check(true, `${tag} the gallery (${after} results) is still there after a reload`);
}

async function runMode(mode, base) {
  const args = ['--headless=new', '--no-sandbox'];
  args.push(mode === 'webgpu' ? '--enable-unsafe-webgpu' : '--disable-blink-features=WebGPU');
  const browser = await chromium.launch({ executablePath: plan.chromium, headless: false, args });
  const context = await browser.newContext({ acceptDownloads: true });
  const requests = [];
  context.on('request', (r) => requests.push({ url: r.url(), method: r.method(), body: r.postDataBuffer() }));
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  try {
    await page.goto(base);
    await page.waitForSelector('#backend[data-kind]:not([data-kind=""])', { timeout: 120_000 });
    const kind = await page.getAttribute('#backend', 'data-kind');
    const badge = await page.textContent('#backend');
    check(kind === (mode === 'webgpu' ? 'webgpu' : 'cpu'), `[${mode}] backend badge: ${badge}`);
    if (mode === 'cpu') check(/running on CPU: slower/.test(badge), `[${mode}] the badge says the CPU is slower`);
    check(/0 bytes of your data sent/.test(await page.textContent('#privacy')), `[${mode}] privacy badge shown`);
    await page.waitForFunction(() => /world-clip: int8/.test(document.querySelector('#model-status')?.textContent ?? ''), null, { timeout: 120_000 });
    console.log(`     model: ${await page.textContent('#model-status')}`);

    // Parity with the CLI, plus bad inputs in the same batch.
    const prompts = [...plan.prompts, '   '];
    await page.fill('#prompts', prompts.join('\n'));
    await page.click('#compare');
    const files = [...plan.images, ...plan.bad.map((b) => b.path)];
    const t0 = Date.now();
    await page.setInputFiles('#image-files', files);
    const counts = await waitForCounts(page, files.length, 300_000);
    await page.waitForFunction((n) => document.querySelectorAll('#similarity th.prompt').length === n, plan.prompts.length, { timeout: 120_000 });
    console.log(`     ${counts} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const table = await readTable(page);
    checkAgainstCli(table, `[${mode}]`);
    for (const bad of plan.bad) {
      const row = table.rows[path.basename(bad.path)];
      const ok = row && row.error && row.error.includes(path.basename(bad.path)) && row.error.includes(bad.expect);
      check(ok, `[${mode}] ${path.basename(bad.path)}: "${row?.error}"`);
    }
    check(table.problems.some((p) => p.includes('is empty')), `[${mode}] empty prompt: "${table.problems.join('; ')}"`);

    // The JSON export holds the same numbers as the table.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
    const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    check(exported.similarity.length === plan.images.length && exported.errors.length === plan.bad.length + 1,
      `[${mode}] JSON export: ${exported.similarity.length} images, ${exported.errors.length} errors`);

    // A 500-image folder, with a progress bar and bounded memory.
    await page.click('#clear');
    let peak = 0;
    let sawProgress = false;
    const sampler = setInterval(() => { peak = Math.max(peak, rendererBytes()); }, 250);
    const watcher = page.waitForSelector('.job progress', { timeout: 60_000 }).then(() => { sawProgress = true; }, () => {});
    // Main-thread tasks over 50 ms while the worker computes: the page must stay responsive.
    await page.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => list.getEntries().forEach((e) => window.longTasks.push(e.duration))).observe({ type: 'longtask' });
    });
    const t1 = Date.now();
    await page.setInputFiles('#image-folder', plan.folder);
    const folderCounts = await waitForCounts(page, plan.folder_count, 600_000);
    clearInterval(sampler);
    await watcher;
    const seconds = (Date.now() - t1) / 1000;
    check(folderCounts.startsWith(`${plan.folder_count} images: ${plan.folder_count} embedded`), `[${mode}] folder: ${folderCounts} in ${seconds.toFixed(1)} s`);
    check(sawProgress, `[${mode}] a progress bar was shown`);
    const longTasks = await page.evaluate(() => window.longTasks);
    const longest = Math.max(0, ...longTasks);
    check(longest < plan.longest_task_ms, `[${mode}] page responsive: ${longTasks.length} main-thread tasks over 50 ms, longest ${longest.toFixed(0)} ms (limit ${plan.longest_task_ms})`);
    check(peak > 0 && peak < 1.5e9, `[${mode}] renderer memory peak ${(peak / 1e6).toFixed(0)} MB (limit 1500 MB)`);
    // Big batches are drawn a page at a time; "show more" draws the next.
    const drawn = await page.$$eval('#similarity tbody tr', (trs) => trs.length);
    await page.click('#show-more');
    const drawnAfter = await page.$$eval('#similarity tbody tr', (trs) => trs.length);
    check(drawn === 200 && drawnAfter === 400, `[${mode}] the table draws ${drawn} of ${plan.folder_count} rows, ${drawnAfter} after "show more"`);

    if (mode === plan.modes[0]) await cancelChecks(page, mode);

    // A reload takes the model from the browser's cache.
    await page.reload();
    await page.waitForFunction(() => /from this browser's cache/.test(document.querySelector('#model-status')?.textContent ?? ''), null, { timeout: 120_000 });
    check(true, `[${mode}] after a reload the model comes from the cache`);

    if (mode === plan.modes[0]) await hubChecks(page, base, mode, requests);
    await invertChecks(page, base, mode);
    if (mode === 'webgpu') await crashChecks(page, mode);
  } catch (e) {
    check(false, `[${mode}] ${e.message.split('\n')[0]}`);
    fs.mkdirSync(plan.out_dir, { recursive: true });
    const shot = path.join(plan.out_dir, `failure-${mode}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.log(`     screenshot: ${shot}`);
  } finally {
    // Privacy: every request stays on this server, is a plain GET of an app or model file, and carries nothing.
    const origin = new URL(base).origin;
    // blob: URLs name bytes already in this page (the gallery's images), not the network.
    const offsite = requests.filter((r) => !r.url.startsWith(origin + '/') && !r.url.startsWith(`blob:${origin}/`));
    const withBody = requests.filter((r) => r.method !== 'GET' || (r.body && r.body.length > 0));
    const allowed = /^\/(|index\.html|boot\.js|app\.js|app_bg\.wasm|worker_loader\.js|worker\.js|worker_bg\.wasm|[\w.-]+\.css|favicon\.svg|models\/[\w./-]+|hub\/cliplens\/[\w.-]+\/resolve\/main\/[\w.-]+)$/;
    const unexpected = requests.filter((r) => r.url.startsWith(origin + '/') && !allowed.test(new URL(r.url).pathname));
    const names = [...plan.images, ...plan.bad.map((b) => b.path)].map((p) => path.basename(p));
    const naming = requests.filter((r) => names.some((n) => decodeURIComponent(r.url).includes(n)));
    check(offsite.length === 0, `[${mode}] no request leaves 127.0.0.1 (${requests.length} requests)${offsite.map((r) => ' ' + r.url).join('')}`);
    check(withBody.length === 0, `[${mode}] every request is a GET without a body${withBody.map((r) => ' ' + r.method + ' ' + r.url).join('')}`);
    check(unexpected.length === 0 && naming.length === 0, `[${mode}] requests fetch only app and model files${[...unexpected, ...naming].map((r) => ' ' + r.url).join('')}`);
    const cspErrors = consoleErrors.filter((e) => /Content Security Policy/i.test(e));
    check(cspErrors.length === 0, `[${mode}] no Content-Security-Policy violations${cspErrors.map((e) => ' | ' + e).join('')}`);
    if (consoleErrors.length) console.log(`     console errors: ${consoleErrors.slice(0, 5).join(' | ')}`);
    await browser.close();
  }
}

const server = await serve(path.resolve(plan.dist), trunkCsp(plan.trunk_toml), plan.hub);
const base = `http://127.0.0.1:${server.address().port}/`;
for (const mode of plan.modes) {
  await runMode(mode, base);
}
server.close();
console.log(failures === 0 ? 'browser tests: all passed' : `browser tests: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
