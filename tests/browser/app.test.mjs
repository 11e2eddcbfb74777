// Browser tests of the built web app in Debian's chromium, on WebGPU
// (SwiftShader) and with WebGPU disabled (the CPU fallback). Run by
// tests/browser.rs, which builds the app and writes the plan (argv[2]):
// inputs, and the native CLI's `--json` outputs to match.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { serveAll } from './serve.mjs';

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
if (plan.huge_png) fs.writeFileSync(plan.huge_png, hugePng(20000));
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

/** Resident memory (bytes) of chromium's processes of one type ('renderer' holds the tab and its worker, 'gpu-process' the GPU's). */
function processBytes(type) {
  let total = 0;
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(`--type=${type}`)) continue;
      const rss = fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1];
      total += Number(rss) * 4096;
    } catch { /* the process ended */ }
  }
  return total;
}

/** Samples the peak memory of the renderer and GPU processes until stopped. */
function memorySampler() {
  const peak = { renderer: 0, gpu: 0 };
  const timer = setInterval(() => {
    peak.renderer = Math.max(peak.renderer, processBytes('renderer'));
    peak.gpu = Math.max(peak.gpu, processBytes('gpu-process'));
  }, 200);
  return { peak, stop: () => clearInterval(timer) };
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

/** The table's similarities equal the native CLI's `embed --json` ones (for the images `only` names, else all). */
function checkAgainstCli(table, tag, only = null) {
  check(JSON.stringify(table.prompts) === JSON.stringify(plan.expected.texts), `${tag} prompt columns are the CLI's prompts`);
  let worst = 0;
  let worstAt = '';
  let compared = 0;
  let wanted = 0;
  plan.expected.images.forEach((image, i) => {
    const name = path.basename(image);
    if (only && !only.includes(name)) return;
    wanted += plan.prompts.length;
    const row = table.rows[name];
    if (!row) { check(false, `${tag} row for ${name}`); return; }
    plan.expected.similarity[i].forEach((want, j) => {
      const diff = Math.abs((row.values[j] ?? NaN) - want);
      const size = Number.isFinite(diff) ? diff : Infinity;
      if (size > worst) { worst = size; worstAt = `${name} x "${plan.prompts[j]}"`; }
      compared += 1;
    });
  });
  check(compared === wanted && worst <= TOLERANCE,
    `${tag} ${compared} similarities match the CLI's --json (worst |diff| ${worst.toExponential(2)} at ${worstAt}, limit ${TOLERANCE})`);
}

const statusMatches = (page, pattern, timeout = 120_000) => page.waitForFunction(
  (source) => new RegExp(source).test(document.querySelector('#model-status')?.textContent ?? ''),
  pattern.source, { timeout });

/** The newest compute worker of the page (a replaced one is gone from the list). */
async function computeWorker(page, notThis = null) {
  for (let i = 0; i < 600; i += 1) {
    const worker = page.workers().filter((w) => /worker/.test(w.url()) && w !== notThis).at(-1);
    if (worker) {
      try {
        // Ready once its wasm has loaded.
        if (await worker.evaluate(() => typeof wasm_bindgen?.test_hook_panic_on === 'function')) return worker;
      } catch { /* still starting */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no compute worker appeared');
}

async function comparePrompts(page, prompts, timeout = 120_000) {
  await page.fill('#prompts', prompts.join('\n'));
  await page.click('#compare');
  await page.waitForFunction((n) => document.querySelectorAll('#similarity th.prompt').length === n, plan.prompts.length, { timeout });
}

/** Parity with the CLI, bad inputs in the same batch, and the JSON and CSV exports. */
async function parityChecks(page, mode) {
  const tag = `[${mode}]`;
  await page.fill('#prompts', [...plan.prompts, '   '].join('\n'));
  await page.click('#compare');
  const files = [...plan.images, ...plan.bad.map((b) => b.path)];
  const t0 = Date.now();
  await page.setInputFiles('#image-files', files);
  const counts = await waitForCounts(page, files.length, 300_000);
  await page.waitForFunction((n) => document.querySelectorAll('#similarity th.prompt').length === n, plan.prompts.length, { timeout: 120_000 });
  console.log(`     ${counts} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const table = await readTable(page);
  checkAgainstCli(table, tag);
  for (const bad of plan.bad) {
    const row = table.rows[path.basename(bad.path)];
    const ok = row && row.error && row.error.includes(path.basename(bad.path)) && row.error.includes(bad.expect);
    check(ok, `${tag} ${path.basename(bad.path)}: "${row?.error}"`);
  }
  check(table.problems.some((p) => p.includes('is empty')), `${tag} empty prompt: "${table.problems.join('; ')}"`);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  check(exported.similarity.length === plan.images.length && exported.errors.length === plan.bad.length + 1,
    `${tag} JSON export: ${exported.similarity.length} images, ${exported.errors.length} errors`);

  // A file name a spreadsheet would run as a formula is exported as text.
  await page.setInputFiles('#image-files', [plan.formula_image]);
  await waitForCounts(page, files.length + 1, 120_000);
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  const lines = fs.readFileSync(await csv.path(), 'utf8').split('\r\n');
  const formulaLine = lines.find((l) => l.includes('1+2.png')) ?? '';
  check(formulaLine.startsWith("'=1+2.png,"), `${tag} CSV export defuses a formula-like name: "${formulaLine.slice(0, 40)}…"`);
  await dropChecks(page, mode, files.length + 1);
}

/** Files dropped on the drop zone (a DataTransfer, as a drag from the desktop delivers them) embed like picked ones. */
async function dropChecks(page, mode, before) {
  const tag = `[${mode}] drop:`;
  const dropped = plan.images.slice(0, 2).map((p) => ({ name: `dropped-${path.basename(p)}`, of: path.basename(p), b64: fs.readFileSync(p).toString('base64') }));
  await page.evaluate((files) => {
    const transfer = new DataTransfer();
    for (const f of files) transfer.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name));
    const zone = document.querySelector('.drop');
    for (const type of ['dragenter', 'dragover', 'drop']) zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, dropped);
  const counts = await waitForCounts(page, before + dropped.length, 120_000);
  const table = await readTable(page);
  const same = dropped.every((d) => table.rows[d.name] && JSON.stringify(table.rows[d.name].values) === JSON.stringify(table.rows[d.of]?.values));
  check(same && counts.startsWith(`${before + dropped.length} images`),
    `${tag} ${dropped.length} dropped files embedded, each equal to the same file picked (${counts})`);
}

/** axe-core's serious and critical findings on the page as it is now. */
async function axeFindings(page) {
  // The page's CSP allows no inline script; evaluation through the DevTools protocol is not one.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}, ${v.nodes.length}x, e.g. ${v.nodes[0].target.join(' ')}): ${v.help}`);
  });
}

/** Presses Tab from the top of the page until `selector` has the focus; the number of presses, or -1. */
async function tabTo(page, selector, limit = 80) {
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  for (let i = 1; i <= limit; i += 1) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return i;
  }
  return -1;
}

/** Every page: no serious axe-core finding at desktop and phone width (390 px), nothing wider than a phone, every picker and sort header reachable and usable by keyboard. */
async function accessibilityChecks(page, base, mode) {
  const tag = `[${mode}] a11y:`;
  const pages = [['embed', '#similarity tbody tr'], ['invert', '#invert-start'], ['probes', '#probe-gap-run'], ['speed', '#speed-run'], ['about', '.about']];
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width, height });
    for (const [route, ready] of pages) {
      await page.click(`nav a[href="#${route}"]`);
      await page.waitForSelector(ready, { timeout: 30_000 });
      const findings = await axeFindings(page);
      check(findings.length === 0, `${tag} #${route} at ${width} px: ${findings.length} serious axe-core findings${findings.map((f) => '\n       ' + f).join('')}`);
      if (width === 390) {
        const wide = await page.evaluate(() => ({
          page: document.documentElement.scrollWidth,
          // Elements that stick out of the screen (a table scrolls inside its own box instead).
          out: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
            && !e.closest('section.results')).slice(0, 3).map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')}`),
        }));
        check(wide.page <= 390 && wide.out.length === 0, `${tag} #${route} fits 390 px (page ${wide.page} px wide${wide.out.length ? '; sticking out: ' + wide.out.join(', ') : ''})`);
      }
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // Keyboard paths: Tab reaches each picker, and Enter opens its file chooser.
  // A listener makes Playwright intercept choosers; the round trip after it
  // lets that reach the browser before the first Enter.
  page.on('filechooser', () => {});
  await page.evaluate(() => 0);
  const pickers = [['embed', '#image-files'], ['embed', '#image-folder'], ['embed', '#model-folder'], ['invert', '#invert-target-image']];
  for (const [route, picker] of pickers) {
    await page.click(`nav a[href="#${route}"]`);
    await page.waitForSelector(picker, { state: 'attached' });
    const presses = await tabTo(page, picker);
    let opened = false;
    if (presses > 0) {
      const chooser = page.waitForEvent('filechooser', { timeout: 5_000 }).then((c) => c, () => null);
      await page.keyboard.press('Enter');
      opened = (await chooser) !== null;
    }
    check(presses > 0 && opened, `${tag} ${picker}: reached with ${presses} Tab presses, Enter opens the file chooser`);
  }
  await page.click('nav a[href="#embed"]');
  await page.waitForSelector('#similarity th.prompt button.sort');
  const presses = await tabTo(page, '#similarity th.prompt button.sort');
  if (presses > 0) await page.keyboard.press('Enter');
  const sorted = await page.getAttribute('#similarity th.prompt', 'aria-sort');
  check(presses > 0 && sorted === 'descending', `${tag} a sort header: reached with ${presses} Tab presses, Enter sorts (aria-sort ${sorted})`);
  // The safety blur of a non-world model is a setting, not undone by a pointer passing over.
  const hoverReveals = await page.evaluate(() => [...document.styleSheets].some((sheet) => {
    try { return [...sheet.cssRules].some((r) => /\.blurred[^{]*:hover/.test(r.selectorText ?? '')); } catch { return false; }
  }));
  check(!hoverReveals, `${tag} no stylesheet rule unblurs images on hover`);
}

/** A 500-image folder, with a progress bar, bounded memory and a responsive page. */
async function folderChecks(page, mode, run = '') {
  const tag = `[${mode}]${run}`;
  await page.click('#clear');
  const memory = memorySampler();
  let sawProgress = false;
  // The bar, and beside it a live region that tells screen readers the stage.
  const watcher = page.waitForSelector('.job:has(progress) [role="status"]', { timeout: 60_000 }).then(() => { sawProgress = true; }, () => {});
  // Main-thread tasks over 50 ms while the worker computes: the page must stay responsive.
  await page.evaluate(() => {
    window.longTasks = [];
    window.pickedAt = null;
    if (!window.watchingLongTasks) {
      window.watchingLongTasks = true;
      document.querySelector('#image-folder').addEventListener('change', () => { window.pickedAt ??= performance.now(); }, { capture: true });
      new PerformanceObserver((list) => list.getEntries().forEach((e) => window.longTasks.push([e.startTime, e.duration]))).observe({ type: 'longtask' });
    }
  });
  const t1 = Date.now();
  await page.setInputFiles('#image-folder', plan.folder);
  const folderCounts = await waitForCounts(page, plan.folder_count, 600_000);
  memory.stop();
  await watcher;
  const seconds = (Date.now() - t1) / 1000;
  check(folderCounts.startsWith(`${plan.folder_count} images: ${plan.folder_count} embedded`), `${tag} folder: ${folderCounts} in ${seconds.toFixed(1)} s`);
  check(sawProgress, `${tag} a progress bar was shown, with a live status for screen readers`);
  // The task that reports a folder pick is the browser's: it makes the 500
  // File objects (over 100 ms here) before the page hears of them. Only the
  // part after the change event is the page's.
  const { tasks, pickedAt } = await page.evaluate(() => ({ tasks: window.longTasks, pickedAt: window.pickedAt }));
  const pageShare = tasks.map(([start, duration]) => (start <= pickedAt && pickedAt <= start + duration ? start + duration - pickedAt : duration));
  const browserPart = tasks.filter(([start, duration]) => start <= pickedAt && pickedAt <= start + duration).map(([s, d]) => pickedAt - s);
  const longest = Math.max(0, ...pageShare);
  check(longest < plan.longest_task_ms, `${tag} page responsive: ${pageShare.filter((d) => d > 50).length} main-thread tasks of the page over 50 ms, longest ${longest.toFixed(0)} ms (limit ${plan.longest_task_ms}; the browser's own File-making took ${(browserPart[0] ?? 0).toFixed(0)} ms of the pick's task)`);
  check(memory.peak.renderer > 0 && memory.peak.renderer < 1.5e9, `${tag} renderer memory peak ${(memory.peak.renderer / 1e6).toFixed(0)} MB (limit 1500 MB)`);
  return longest;
}

/** Cancel stops an image job part-way (a real press: down, 100 ms, up, while progress streams); Resume finishes it. */
async function cancelChecks(page, mode) {
  const tag = `[${mode}] cancel:`;
  await page.click('#clear');
  // The folder was embedded just before: without this its results would come back from the cache at once.
  await page.evaluate(() => caches.delete('cliplens-embeddings-v1'));
  await page.setInputFiles('#image-folder', plan.folder);
  await page.waitForFunction(() => {
    const m = document.querySelector('#counts')?.textContent.match(/: (\d+) embedded/);
    return m && Number(m[1]) >= 32;
  }, null, { timeout: 300_000, polling: 100 });
  const button = await page.$('.job .job-cancel');
  const box = await button.boundingBox();
  const marked = await button.evaluate((b) => { b.dataset.original = 'yes'; return true; });
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.waitForTimeout(100);
  await page.mouse.up();
  const same = await button.evaluate((b) => b.isConnected && b.dataset.original === 'yes').catch(() => false);
  check(marked && same, `${tag} the Cancel button pressed is the one released on (rows are not rebuilt by progress)`);
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

const cdnRequests = (servers, repo) => servers.log.cdn.filter((r) => r.method === 'GET' && r.url.startsWith(`/cdn/${repo}/`));

/**
 * Models from a stand-in Hugging Face Hub that redirects weights to a second
 * origin: fetched by range requests and quantized in the worker to the CLI's
 * numbers, checked against the listed sha256, cached, listed again; a damaged
 * download, a missing listing, a broken-off download (resumed), a repository
 * without safetensors and weights that are not this CLIP each say so.
 */
async function hubChecks(page, servers, mode, requests) {
  const tag = `[${mode}] hub:`;
  const hub = `${servers.base}hub`;
  const withHub = (extra = '') => `${servers.base}?hub=${encodeURIComponent(hub)}${extra}`;

  // A mirror on plain http elsewhere is refused before any request.
  await page.goto(`${servers.base}?hub=${encodeURIComponent(servers.foreignOrigin)}`);
  await statusMatches(page, /world-clip: int8/);
  await page.fill('#hub-id', 'cliplens/world-clip');
  await page.click('#hub-load');
  await statusMatches(page, /could not load/);
  check(/https/.test(await page.textContent('#model-status')) && servers.log.foreign.length === 0,
    `${tag} an http mirror elsewhere is refused: "${await page.textContent('#model-status')}"`);

  await page.goto(withHub());
  await statusMatches(page, /world-clip: int8/);
  const offsiteBefore = Number(await page.getAttribute('#privacy', 'data-offsite'));
  await page.fill('#hub-id', 'cliplens/world-clip');
  await page.click('#hub-load');
  await statusMatches(page, /^cliplens\/world-clip: int8|could not load/);
  const status = await page.textContent('#model-status');
  check(/^cliplens\/world-clip: int8/.test(status) && /sha256 checked against .*file list/.test(status) && /quantized to int8 in this tab/.test(status),
    `${tag} fetched through a redirect to another origin, checked and quantized: "${status}"`);
  const gets = cdnRequests(servers, 'cliplens/world-clip');
  check(gets.length >= 3 && gets.every((r) => /^bytes=\d+-\d+$/.test(r.range ?? '')),
    `${tag} the weights came in ${gets.length} range requests (${gets.map((r) => r.range).join(', ')})`);
  await comparePrompts(page, plan.prompts);
  await page.setInputFiles('#image-files', plan.images);
  await waitForCounts(page, plan.images.length, 300_000);
  checkAgainstCli(await readTable(page), tag);
  // The badge counts what left the origin: these downloads, nothing else.
  await page.waitForFunction((n) => Number(document.querySelector('#privacy')?.dataset.offsite) >= n, offsiteBefore + gets.length, { timeout: 10_000 }).catch(() => {});
  const offsite = Number(await page.getAttribute('#privacy', 'data-offsite'));
  check(offsite - offsiteBefore === gets.length, `${tag} the privacy badge counts the ${gets.length} downloads from the other origin: "${await page.textContent('#privacy')}"`);

  // The next visit takes it from the cache: no request to the Hub at all, and no question.
  const before = requests.filter((r) => r.url.includes('/hub/') || r.url.includes('/cdn/')).length;
  await page.goto(withHub('&model=hub:cliplens/world-clip'));
  await statusMatches(page, /^cliplens\/world-clip: int8.*from this browser's cache/);
  const hubAfter = requests.filter((r) => r.url.includes('/hub/') || r.url.includes('/cdn/')).length;
  const asked = await page.$('#hub-ask');
  check(hubAfter === before && !asked, `${tag} a reload with ?model=hub: loads it from the cache without asking (${hubAfter - before} Hub requests)`);
  const options = await page.$$eval('#model-select option', (os) => os.map((o) => o.textContent));
  check(options.some((o) => o.startsWith('world-judge')) && options.some((o) => o.startsWith('cliplens/world-clip (Hugging Face')),
    `${tag} the model list has the site's models and the fetched one: ${options.join(' | ')}`);

  // A link naming a model not yet here: the size, and a question; nothing downloads unasked.
  const judgeBefore = cdnRequests(servers, 'cliplens/world-judge').length;
  await page.goto(withHub('&model=hub:cliplens/world-judge'));
  await page.waitForSelector('#hub-ask', { timeout: 60_000 });
  const question = await page.textContent('#hub-ask');
  await page.waitForTimeout(1000);
  check(/cliplens\/world-judge/.test(question) && /\d+ MB/.test(question) && cdnRequests(servers, 'cliplens/world-judge').length === judgeBefore,
    `${tag} ?model=hub: asks first, with the size: "${question.slice(0, 90)}…"`);
  await page.click('#hub-ask-yes');
  await statusMatches(page, /^cliplens\/world-judge: int8/);
  check(cdnRequests(servers, 'cliplens/world-judge').length > judgeBefore, `${tag} after "Download" it was fetched`);

  for (const [repo, expect] of [
    ['cliplens/tampered', /does not match the published 0000/],
    ['cliplens/no-weights', /has no model\.safetensors/],
    ['cliplens/not-clip', /token_embedding.*shape .* does not match/],
  ]) {
    await page.fill('#hub-id', repo);
    await page.click('#hub-load');
    await statusMatches(page, new RegExp(`could not load.*${repo.split('/')[1]}`));
    const message = await page.textContent('#model-status');
    check(expect.test(message), `${tag} ${repo}: "${message}"`);
  }
  // Weights that are not this CLIP are refused from their header: one range request, not the file.
  check(cdnRequests(servers, 'cliplens/not-clip').length === 1, `${tag} not-clip was refused after ${cdnRequests(servers, 'cliplens/not-clip').length} request (its header)`);
  // The damaged download was not kept: asking again downloads again.
  const tamperedBefore = cdnRequests(servers, 'cliplens/tampered').length;
  await page.fill('#hub-id', 'cliplens/tampered');
  await page.click('#hub-load');
  await statusMatches(page, /could not load.*tampered/);
  check(cdnRequests(servers, 'cliplens/tampered').length > tamperedBefore, `${tag} a damaged download is not cached (downloaded again)`);

  // Without the Hub's listing there is nothing to check against: the status says so.
  await page.fill('#hub-id', 'cliplens/unlisted');
  await page.click('#hub-load');
  await statusMatches(page, /^cliplens\/unlisted: int8|could not load/);
  const unlisted = await page.textContent('#model-status');
  check(/NOT checked/.test(unlisted), `${tag} an unlisted file is loaded and said to be unchecked: "${unlisted}"`);

  // A download that breaks off keeps what arrived and resumes from there.
  await page.fill('#hub-id', 'cliplens/flaky');
  await page.click('#hub-load');
  await statusMatches(page, /could not load.*flaky|^cliplens\/flaky/);
  const broke = await page.textContent('#model-status');
  check(/broke off/.test(broke) && /are kept: fetch it again to resume/.test(broke), `${tag} a broken download: "${broke}"`);
  const firstTry = cdnRequests(servers, 'cliplens/flaky').length;
  await page.click('#hub-load');
  await statusMatches(page, /^cliplens\/flaky: int8|could not load/);
  const again = cdnRequests(servers, 'cliplens/flaky').slice(firstTry);
  const resumedAt = Number(again.find((r) => r.range && !r.range.startsWith('bytes=0-'))?.range.match(/bytes=(\d+)/)[1] ?? 0);
  const firstData = again.filter((r) => r.range && Number(r.range.match(/bytes=(\d+)/)[1]) > 0)[0];
  check(/^cliplens\/flaky: int8/.test(await page.textContent('#model-status')) && resumedAt > 1e6 && firstData === again.find((r) => r.range && !r.range.startsWith('bytes=0-')),
    `${tag} the second try resumed at byte ${resumedAt}: ${again.map((r) => r.range).join(', ')}`);
  await comparePrompts(page, plan.prompts);
  await page.click('#clear');
  await page.setInputFiles('#image-files', plan.images);
  await waitForCounts(page, plan.images.length, 300_000);
  checkAgainstCli(await readTable(page), `${tag} resumed:`);
}

/** A picked folder that is not the model its config describes fails to load, and the model before keeps working. */
async function failedLoadChecks(page, mode) {
  const tag = `[${mode}] failed load:`;
  await page.goto(page.url().split('?')[0].split('#')[0]);
  await statusMatches(page, /world-clip: int8/);
  await page.setInputFiles('#model-folder', plan.bad_model_folder);
  await statusMatches(page, /could not load/);
  const message = await page.textContent('#model-status');
  check(/does not match/.test(message), `${tag} "${message}"`);
  await comparePrompts(page, plan.prompts);
  await page.click('#clear');
  await page.setInputFiles('#image-files', plan.images);
  await waitForCounts(page, plan.images.length, 300_000);
  const table = await readTable(page);
  checkAgainstCli(table, `${tag} world-clip still answers:`);
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

async function setInvertSettings(page, want) {
  await page.fill('#invert-prompt', want.prompt);
  await page.selectOption('#invert-preset', want.preset ?? 'quick');
  await page.fill('#invert-seed', String(want.seed));
  await page.dispatchEvent('#invert-seed', 'change');
  await page.click('.advanced summary');
  await page.fill('#invert-steps', String(want.steps));
  await page.dispatchEvent('#invert-steps', 'change');
  if (want.views) {
    await page.fill('#invert-views', String(want.views));
    await page.dispatchEvent('#invert-views', 'change');
  }
}

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
  await setInvertSettings(page, want);
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
  check(Number.isFinite(similarity) && Math.abs(similarity - want.cli.similarity) < 1e-3,
    `${tag} ${want.steps} steps in ${seconds.toFixed(1)} s, similarity ${similarity} vs the CLI's ${want.cli.similarity.toFixed(4)} (limit 1e-3): "${status}"`);
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

/**
 * A real Rust panic in the worker (a test hook makes the decoder's caller
 * panic on one image) costs that image only: the worker is replaced on the
 * same backend, the rest of the batch is embedded to the CLI's numbers. A
 * real device loss (GPUDevice.destroy()) moves the page to the CPU and keeps
 * what was done.
 */
/**
 * Concepts (SpLiCE): folders A and B (B with its backgrounds skewed to night)
 * are decomposed with the world vocabulary; the comparison ranks "night"
 * first; the JSON export equals `cliplens decompose --json` within 1e-4; the
 * slider re-solves without encoding again; encoding a large list shows
 * progress and stops on Cancel; after a reload the dictionary comes from
 * the cache.
 */
async function conceptsChecks(page, base, mode) {
  const tag = `[${mode}] concepts:`;
  const want = plan.concepts;
  await page.goto(`${base}#embed`);
  await statusMatches(page, /world-clip: int8/);
  await page.click('#clear');
  await page.goto(`${base}#concepts`);
  await page.waitForFunction(() => /54 concepts from world/.test(document.querySelector('#concept-status')?.textContent ?? ''), null, { timeout: 120_000 });
  const total = want.a_count + want.b_count;
  await page.setInputFiles('#concept-folder', want.a);
  await page.setInputFiles('#concept-folder-b', want.b);
  await page.waitForFunction((n) => new RegExp(`^${n} images`).test(document.querySelector('#concept-summary')?.textContent ?? ''), total, { timeout: 300_000 });
  const summary = await page.textContent('#concept-summary');
  check(/Image mean: image_mean.json|Image mean: models\/world-clip\/image_mean.json/.test(summary), `${tag} ${summary}`);
  const firstShift = await page.textContent('#concept-shifts tbody tr:first-child th');
  check(/▲ night/.test(firstShift), `${tag} A to B: the first concept is "${firstShift.trim()}" (night was planted)`);

  // The export equals the CLI's numbers (folder A; B is the same code).
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#concept-export-json')]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  // A comes first (B has files of the same names).
  const byName = new Map(exported.images.slice(0, want.a_count).map((i) => [path.basename(i.file), i]));
  let worst = 0, sameConcepts = 0;
  for (const cli of want.cli.images) {
    const ours = byName.get(path.basename(cli.file));
    if (!ours) continue;
    const names = (x) => x.concepts.map((c) => c.concept).join(',');
    if (names(ours) === names(cli)) sameConcepts += 1;
    cli.concepts.forEach((c, k) => { worst = Math.max(worst, Math.abs(c.weight - (ours.concepts[k]?.weight ?? 0))); });
    worst = Math.max(worst, Math.abs(cli.cosine - ours.cosine));
  }
  check(sameConcepts === want.cli.images.length && worst < 1e-4,
    `${tag} ${sameConcepts} of ${want.cli.images.length} images have the CLI's concepts, weights and cosines within ${worst.toExponential(1)} (limit 1e-4)`);

  // The CSV export: a row per image and concept, the same weights as the JSON.
  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.click('#concept-export-csv')]);
  const csvLines = fs.readFileSync(await csvDownload.path(), 'utf8').trim().split(/\r?\n/);
  const rows = exported.images.reduce((n, i) => n + i.concepts.length, 0);
  const firstRow = csvLines[1].split(',');
  check(csvLines[0] === 'file,concept,weight,cosine,lambda,l0' && csvLines.length === rows + 1
    && firstRow[1] === exported.images[0].concepts[0].concept && Math.abs(Number(firstRow[2]) - exported.images[0].concepts[0].weight) < 1e-6,
    `${tag} the CSV has a row per image and concept (${csvLines.length - 1} of ${rows}), with the JSON's weights`);

  // Intervention: removing "night" from folder A moves its night predictions elsewhere.
  await page.click('.intervention summary');
  await page.fill('#concept-remove', 'night');
  await page.fill('#concept-prompts', 'a photo of a figure at night\na photo of a figure in a city');
  await page.click('#concept-intervene');
  await page.waitForSelector('#concept-intervention tbody tr', { timeout: 60_000 });
  const counts = await page.$$eval('#concept-intervention tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.textContent))));
  check(counts.length === 2 && counts[0][0] > 0 && counts[0][1] < counts[0][0],
    `${tag} removing "night": night predictions ${counts[0]?.[0]} -> ${counts[0]?.[1]}, city ${counts[1]?.[0]} -> ${counts[1]?.[1]} (of ${want.a_count})`);

  // The page as the README shows it (docs/img/concepts.png).
  await page.setViewportSize({ width: 1280, height: 1500 });
  fs.mkdirSync(plan.out_dir, { recursive: true });
  await page.screenshot({ path: path.join(plan.out_dir, `concepts-${mode}.png`) });
  await page.setViewportSize({ width: 1280, height: 800 });

  // The slider solves again from the embeddings: no encoding, fewer concepts.
  const encodings = await page.getAttribute('#concept-status', 'data-encodings');
  await page.fill('#concept-l0', '3');
  await page.dispatchEvent('#concept-l0', 'input');
  await page.waitForFunction(() => / [0-3]\.\d concepts each/.test(document.querySelector('#concept-summary')?.textContent ?? ''), null, { timeout: 60_000 });
  const most = await page.$$eval('.concept-card', (cards) => Math.max(...cards.map((c) => c.querySelectorAll('.concept-bars li').length)));
  const encodingsAfter = await page.getAttribute('#concept-status', 'data-encodings');
  check(most <= 3 && encodings === encodingsAfter, `${tag} the slider at 3: at most ${most} concepts per image, dictionary encodings ${encodings} -> ${encodingsAfter}`);
  // A concept's name ranks the images that carry it.
  await page.click('#concept-histogram li:first-child .concept-word');
  const line = await page.textContent('.search-line');
  check(/of \d+ images carry/.test(line), `${tag} search: ${line.trim()}`);

  await page.click('.search-line button');

  // "Invert this mix": the studio aims at the recomposed embedding alone.
  await page.click('.concept-card:first-child .invert-mix');
  await page.waitForSelector('#invert-target-vectors', { timeout: 30_000 });
  const aim = await page.textContent('#invert-target-vectors');
  const prompt = await page.inputValue('#invert-prompt');
  await page.selectOption('#invert-preset', 'quick');
  await page.evaluate(() => { document.querySelector('.advanced').open = true; });
  await page.fill('#invert-steps', '5');
  await page.dispatchEvent('#invert-steps', 'change');
  await page.click('#invert-start');
  await page.waitForFunction(() => /done:|could not/.test(document.querySelector('#invert-status')?.textContent ?? ''), null, { timeout: 300_000 });
  const done = (await page.textContent('#invert-status')).trim();
  check(/concept mix of \d+\.png/.test(aim) && prompt === '' && /done: similarity/.test(done), `${tag} "Invert this mix" aims the studio at "${aim.replace('remove', '').trim()}" (prompt "${prompt}"): ${done}`);
  await page.click('#invert-target-vectors button');
  await page.goto(`${base}#concepts`);
  await page.waitForSelector('.concept-card', { timeout: 30_000 });

  // Cards come a page at a time (60), the rest on "show more".
  const firstPage = await page.$$eval('.concept-card', (cards) => cards.length);
  await page.click('#concept-more');
  // The next page of cards is drawn after the click's handler returns: wait for it (or time out and report the count).
  await page.waitForFunction((n) => document.querySelectorAll('.concept-card').length >= n, total, { timeout: 10_000 }).catch(() => {});
  const allCards = await page.$$eval('.concept-card', (cards) => cards.length);
  check(firstPage === 60 && allCards === total, `${tag} ${firstPage} cards drawn first, ${allCards} after "show more"`);

  // Readable by everyone: axe with the charts on screen, at desktop and phone width; the slider by keyboard.
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    const findings = await axeFindings(page);
    check(findings.length === 0, `${tag} ${width} px with ${total} charts: ${findings.length} serious axe-core findings${findings.map((f) => '\n       ' + f).join('')}`);
    const wide = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      out: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
        && !e.closest('.concept-collection')).slice(0, 3).map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')}`),
    }));
    if (width === 390) check(wide.page <= 390 && wide.out.length === 0, `${tag} fits 390 px (page ${wide.page} px wide${wide.out.length ? '; sticking out: ' + wide.out.join(', ') : ''})`);
    fs.mkdirSync(plan.out_dir, { recursive: true });
    await page.screenshot({ path: path.join(plan.out_dir, `concepts-${mode}-${width}.png`), fullPage: false });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await tabTo(page, '#concept-l0');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => / [0-4]\.\d concepts each/.test(document.querySelector('#concept-summary')?.textContent ?? '')
    && /At most 4 concepts/.test(document.body.textContent), null, { timeout: 30_000 });
  check(true, `${tag} the slider moves by keyboard (Tab, then the arrow key: at most 4 concepts)`);

  // A large list: progress while it is encoded, and Cancel stops it.
  await page.selectOption('#concept-vocab', 'laion-clean');
  const row = page.locator('.job', { hasText: 'preparing the concept dictionary' });
  await row.locator('progress').waitFor({ timeout: 60_000 });
  await page.waitForFunction(() => /encoding concepts/.test(document.querySelector('.job')?.textContent ?? ''), null, { timeout: 60_000 }).catch(() => {});
  const cancel = row.locator('.job-cancel');
  await cancel.hover();
  await page.mouse.down();
  await page.waitForTimeout(100);
  await page.mouse.up();
  await row.waitFor({ state: 'detached', timeout: 30_000 });
  check(true, `${tag} encoding 9,790 words showed progress and stopped on Cancel`);
  await page.selectOption('#concept-vocab', 'world');
  await page.waitForFunction(() => /54 concepts from world/.test(document.querySelector('#concept-status')?.textContent ?? ''), null, { timeout: 60_000 });

  // After a reload the dictionary comes from this browser's cache.
  await page.reload();
  await page.waitForFunction(() => /54 concepts from world.*cache/.test(document.querySelector('#concept-status')?.textContent ?? ''), null, { timeout: 120_000 });
  check(true, `${tag} after a reload: "${(await page.textContent('#concept-status')).trim()}"`);
}

async function crashChecks(page, base, mode) {
  const tag = `[${mode}] worker crash:`;
  await page.goto(base);
  await statusMatches(page, /world-clip: int8/);
  await comparePrompts(page, plan.prompts);
  const victim = path.basename(plan.images[Math.floor(plan.images.length / 2)]);
  const worker = await computeWorker(page);
  await worker.evaluate((name) => wasm_bindgen.test_hook_panic_on(name), victim);
  await page.setInputFiles('#image-files', plan.images);
  await waitForCounts(page, plan.images.length, 300_000);
  const table = await readTable(page);
  const message = table.rows[victim]?.error ?? '';
  check(/skipped: the compute worker crashed: .*test hook: a deliberate panic/.test(message), `${tag} the image that panicked is marked: "${message}"`);
  const others = plan.images.map((p) => path.basename(p)).filter((n) => n !== victim);
  check(others.every((n) => table.rows[n]?.values.length === plan.prompts.length), `${tag} the ${others.length} other images were embedded`);
  checkAgainstCli(table, tag, others);
  const kind = await page.getAttribute('#backend', 'data-kind');
  check(kind === (mode === 'webgpu' ? 'webgpu' : 'cpu'), `${tag} still on ${kind} after a panic: "${await page.textContent('#backend')}"`);
  const notice = await page.textContent('.notice').catch(() => '');
  check(/restarted on the same device/.test(notice), `${tag} the notice says what happened: "${notice}"`);

  if (mode !== 'webgpu') return;
  const tagLoss = `[${mode}] device loss:`;
  const second = await computeWorker(page, worker);
  const done = await page.$$eval('#similarity td.value', (tds) => tds.length);
  await second.evaluate(() => self.cliplensGpuDevice.destroy());
  await page.waitForSelector('#backend[data-kind="cpu"]', { timeout: 120_000 });
  const badge = await page.textContent('#backend');
  check(/running on CPU: slower/.test(badge) && /GPU device was lost/.test(badge), `${tagLoss} badge: "${badge}"`);
  await statusMatches(page, /world-clip: int8/, 300_000);
  const kept = await page.$$eval('#similarity td.value', (tds) => tds.length);
  check(kept === done, `${tagLoss} the ${done} values done before stay (${kept})`);
  await page.click('#clear');
  await page.setInputFiles('#image-files', plan.images);
  await waitForCounts(page, plan.images.length, 300_000);
  checkAgainstCli(await readTable(page), `${tagLoss} on the CPU:`);
}

/** The shipped headers keep the page and the worker away from other origins, and the app out of foreign frames. */
async function securityChecks(page, context, servers, mode) {
  const tag = `[${mode}] security:`;
  const hitsBefore = servers.log.foreign.length;
  const target = `${servers.foreignOrigin}/exfiltrate`;
  const attempt = (url) => fetch(url, { method: 'POST', body: 'secret' }).then(() => 'reached', (e) => `blocked (${e.message})`);
  const fromPage = await page.evaluate(attempt, target);
  const worker = await computeWorker(page);
  const fromWorker = await worker.evaluate(attempt, target);
  check(fromPage.startsWith('blocked') && fromWorker.startsWith('blocked') && servers.log.foreign.length === hitsBefore,
    `${tag} a fetch to a foreign origin is blocked from the page (${fromPage}) and from the worker (${fromWorker})`);
  // Framed by a foreign site: refused (frame-ancestors 'none').
  const framer = await context.newPage();
  const frameErrors = [];
  framer.on('console', (m) => frameErrors.push(m.text()));
  await framer.goto(`${servers.foreignOrigin}/frame.html?src=${encodeURIComponent(servers.base)}`);
  await framer.waitForTimeout(1500);
  const framedBoot = await framer.frames().find((f) => f !== framer.mainFrame())?.evaluate(() => !!document.querySelector('#backend')).catch(() => false);
  check(!framedBoot && frameErrors.some((e) => /frame-ancestors/.test(e)), `${tag} a foreign page cannot frame the app (${frameErrors.find((e) => /frame-ancestors/.test(e))?.slice(0, 80)})`);
  await framer.close();
}

/** After one visit, the app opens with the network off (www/sw.js) and its model loads from the cache. */
async function offlineChecks(page, context, mode) {
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  if (!(await page.evaluate(() => !!navigator.serviceWorker.controller))) await page.reload();
  await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 });
  await context.setOffline(true);
  try {
    const offline = await page.evaluate(() => fetch('models/manifest.json', { cache: 'no-store' }).then(() => 'served', () => 'failed'));
    await page.reload();
    await statusMatches(page, /world-clip: int8/);
    const badge = await page.textContent('#backend');
    check(offline === 'served' && /running on CPU|WebGPU:/.test(badge), `[${mode}] with the network off (a fetch from the page: ${offline}), a reload opens the app from its service worker and loads the model (${(await page.textContent('#model-status')).slice(0, 60)}...)`);
  } finally {
    await context.setOffline(false);
  }
}

async function launch(mode) {
  const args = ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
  args.push(mode === 'webgpu' ? '--enable-unsafe-webgpu' : '--disable-blink-features=WebGPU');
  const browser = await chromium.launch({ executablePath: plan.chromium, headless: false, args });
  const context = await browser.newContext({ acceptDownloads: true });
  const requests = [];
  const page = await context.newPage();
  context.on('request', (r) => requests.push({
    url: r.url(), method: r.method(), body: r.postDataBuffer(),
    // The test's own page loads (goto, reload) carry the test's query strings.
    navigation: r.isNavigationRequest() && r.frame() === page.mainFrame(),
  }));
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  return { browser, context, page, requests, consoleErrors };
}

async function openApp(page, base, mode) {
  await page.goto(base);
  await page.waitForSelector('#backend[data-kind]:not([data-kind=""])', { timeout: 120_000 });
  const kind = await page.getAttribute('#backend', 'data-kind');
  const badge = await page.textContent('#backend');
  check(kind === (mode === 'webgpu' ? 'webgpu' : 'cpu'), `[${mode}] backend badge: ${badge}`);
  if (mode === 'cpu') check(/running on CPU: slower/.test(badge), `[${mode}] the badge says the CPU is slower`);
  check(/no request left this site/.test(await page.textContent('#privacy')), `[${mode}] privacy badge: "${await page.textContent('#privacy')}"`);
  await statusMatches(page, /world-clip: int8/);
  console.log(`     model: ${await page.textContent('#model-status')}`);
}

/** Every request stays on 127.0.0.1, is a GET of an app or model file (or the stand-in CDN's weights), and carries nothing. */
function privacyChecks(requests, servers, mode, consoleErrors) {
  const appOrigin = new URL(servers.base).origin;
  const cdn = (u) => u.startsWith(`${servers.cdnOrigin}/cdn/`);
  const offsite = requests.filter((r) => !r.url.startsWith(appOrigin + '/') && !r.url.startsWith(`blob:${appOrigin}/`) && !cdn(r.url)
    && !r.url.startsWith(servers.foreignOrigin + '/frame.html'));
  const withBody = requests.filter((r) => r.method !== 'GET' || (r.body && r.body.length > 0));
  const allowed = /^\/(|index\.html|boot\.js|app\.js|app_bg\.wasm|worker_loader\.js|worker\.js|worker_bg\.wasm|gpu_hooks\.js|sw\.js|[\w.-]+\.css|favicon\.svg|models\/[\w./-]+|hub\/cliplens\/[\w.-]+\/resolve\/main\/[\w.-]+|hub\/api\/models\/cliplens\/[\w.-]+\/tree\/main)$/;
  // A query string could carry anything (a name, a result): the app's own files never need one.
  // The service worker (www/sw.js) fetches a page load again on its behalf: the same URL, the test's own.
  const navigations = new Set(requests.filter((r) => r.navigation).map((r) => r.url));
  const ownLoad = (r) => r.navigation || navigations.has(r.url);
  const unexpected = requests.filter((r) => r.url.startsWith(appOrigin + '/')
    && (!allowed.test(new URL(r.url).pathname) || (new URL(r.url).search !== '' && !ownLoad(r))));
  const names = [...(plan.images ?? []), ...(plan.bad ?? []).map((b) => b.path)].map((p) => path.basename(p));
  const naming = requests.filter((r) => names.some((n) => decodeURIComponent(r.url).includes(n)));
  check(offsite.length === 0, `[${mode}] no request leaves 127.0.0.1's app and stand-in Hub (${requests.length} requests)${offsite.map((r) => ' ' + r.url).join('')}`);
  check(withBody.length === 0, `[${mode}] every request is a GET without a body${withBody.map((r) => ' ' + r.method + ' ' + r.url).join('')}`);
  check(unexpected.length === 0 && naming.length === 0, `[${mode}] requests fetch only app and model files${[...unexpected, ...naming].map((r) => ' ' + r.url).join('')}`);
  const cspErrors = consoleErrors.filter((e) => /Content Security Policy/i.test(e) && !/exfiltrate/.test(e));
  check(cspErrors.length === 0, `[${mode}] no Content-Security-Policy violations by the app${cspErrors.map((e) => ' | ' + e).join('')}`);
  if (consoleErrors.length) console.log(`     console errors: ${consoleErrors.slice(0, 5).join(' | ')}`);
}

async function runMode(mode, servers) {
  const base = servers.base;
  if (plan.only === 'hub') return repeatHubChecks(mode, servers);
  const { browser, context, page, requests, consoleErrors } = await launch(mode);
  try {
    await openApp(page, base, mode);
    if (plan.only === 'responsiveness') {
      const longest = [];
      for (let run = 1; run <= plan.repeat; run += 1) longest.push(await folderChecks(page, mode, ` run ${run}/${plan.repeat}`));
      console.log(`     longest main-thread task per run: ${longest.map((l) => l.toFixed(0)).join(', ')} ms`);
      return;
    }
    if (plan.only === 'offline') { await offlineChecks(page, context, mode); return; }
    if (plan.only === 'concepts') { await conceptsChecks(page, base, mode); return; }
    if (plan.only === 'audit') { await auditChecks(page, base, mode); return; }
    if (plan.only === 'speed') { await speedChecks(page, mode); return; }
    if (plan.only === 'probes') { await probesChecks(page, mode); return; }
    await parityChecks(page, mode);
    if (plan.only === 'a11y') { await accessibilityChecks(page, base, mode); return; }
    if (mode === plan.modes[0]) await accessibilityChecks(page, base, mode);
    await folderChecks(page, mode);
    // Big batches are drawn a page at a time; "show more" draws the next.
    await page.waitForFunction(() => document.querySelectorAll('#similarity tbody tr').length >= 200, null, { timeout: 10_000 });
    const drawn = await page.$$eval('#similarity tbody tr', (trs) => trs.length);
    await page.click('#show-more');
    // Rows are added a few dozen per frame.
    await page.waitForFunction(() => document.querySelectorAll('#similarity tbody tr').length >= 400, null, { timeout: 10_000 }).catch(() => {});
    const drawnAfter = await page.$$eval('#similarity tbody tr', (trs) => trs.length);
    check(drawn === 200 && drawnAfter === 400, `[${mode}] the table draws ${drawn} of ${plan.folder_count} rows, ${drawnAfter} after "show more"`);
    if (mode === plan.modes[0]) await cancelChecks(page, mode);

    // A reload takes the model from the browser's cache.
    await page.reload();
    await statusMatches(page, /from this browser's cache/);
    check(true, `[${mode}] after a reload the model comes from the cache`);
    if (mode === plan.modes[0]) await offlineChecks(page, context, mode);

    if (mode === plan.modes[0]) {
      await hubChecks(page, servers, mode, requests);
      await failedLoadChecks(page, mode);
    }
    await invertChecks(page, base, mode);
    await conceptsChecks(page, base, mode);
    await auditChecks(page, base, mode);
    await speedChecks(page, mode);
    await probesChecks(page, mode);
    await crashChecks(page, base, mode);
    await securityChecks(page, context, servers, mode);
  } catch (e) {
    check(false, `[${mode}] ${e.message.split('\n')[0]}`);
    fs.mkdirSync(plan.out_dir, { recursive: true });
    const shot = path.join(plan.out_dir, `failure-${mode}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.log(`     screenshot: ${shot}`);
  } finally {
    privacyChecks(requests, servers, mode, consoleErrors);
    await browser.close();
  }
}

/** The Probes page: each world probe gives the CLI's finding (association with two figures, the card's signs, attribution on the figures and complete, a fooling image that wins every prompt, the gap); a picked picture is explained; saves; axe; phone width. */
async function probesChecks(page, mode) {
  const tag = `[${mode}] probes:`;
  await page.click('nav a[href="#probes"]');
  await page.waitForSelector('#probe-association-run');
  await page.fill('#probe-scenes', 'x');
  await page.click('#probe-association-run');
  await page.waitForSelector('#probe-error');
  check(/world scenes: `x`/.test(await page.textContent('#probe-error')), `${tag} a word where a number belongs is named`);
  await page.fill('#probe-scenes', '60');
  await page.fill('#probe-seed', '3');
  const rows = (id) => page.$$eval(`#probe-${id}-table tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  const run = async (id, button = `#probe-${id}-run`, timeout = 300_000) => {
    // Starting a run clears the probe's old result, so the table waited for is the new one.
    await page.click(button);
    await page.waitForSelector(`#probe-${id}-table tbody tr`, { timeout });
    return rows(id);
  };

  const association = await run('association');
  const rate = (row) => Number(row[3].split('%')[0]);
  check(association.length === 2 && rate(association[0]) > rate(association[1]) + 10,
    `${tag} concept association: the other colour wins ${association[0][3]} with two figures, ${association[1][3]} with one`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#probe-association-json')]);
  const saved = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  check(saved.probe === 'concept association' && saved.report.two_object.questions === 60, `${tag} Save JSON gives the report (${download.suggestedFilename()})`);

  const social = await run('social');
  const shift = (role) => Number(social.find((r) => r[1] === role)?.[3].split(' ')[0]);
  check(social.length === 8 && ['pilot', 'doctor', 'guard'].every((r) => shift(r) < 0) && ['artist', 'nurse', 'chef'].every((r) => shift(r) > 0),
    `${tag} social perception: glim → vorn lowers pilot ${shift('pilot')}, doctor ${shift('doctor')}, guard ${shift('guard')}; raises artist ${shift('artist')}, nurse ${shift('nurse')}, chef ${shift('chef')}`);

  await page.fill('#probe-prompt', 'a photo of a doctor');
  const words = await run('attribution');
  const summary = await page.textContent('#probe-attribution-result');
  const off = Number(/\(([\d.]+)% off\)/.exec(summary)?.[1]);
  const panels = await page.$$eval('#probe-attribution-result svg image', (imgs) => imgs.length);
  check(words.length === 5 && words[4][0] === 'doctor' && off <= 1 && panels === 4 && /a world scene/.test(summary),
    `${tag} attribution of a world scene: 4 panels, 5 words, integrated gradients ${off}% off`);
  await page.setInputFiles('#probe-picture', plan.images[0]);
  await run('attribution');
  const mine = await page.textContent('#probe-attribution-result');
  check(mine.includes(path.basename(plan.images[0])), `${tag} a picked picture is explained: "${mine.slice(0, 90)}…"`);
  // Two scenes (each two prompts, every path refined to 1%): the CLI's `--world 2 --seed 3` gives 81.2%.
  await page.fill('#probe-scenes', '2');
  const world = await run('attribution', '#probe-attribution-world');
  const inside = Number(world[0][2].replace('%', ''));
  check(world.length === 2 && Math.abs(inside - 81.2) < 1, `${tag} attribution on 2 world scenes: ${inside}% of a role's integrated gradients on the figures' cells (CLI: 81.2%)`);

  await page.fill('#probe-scenes', '200');
  await page.fill('#probe-fooling-steps', '300');
  const fooling = await run('fooling');
  const won = await page.textContent('#probe-fooling-result');
  check(fooling.length === 8 && fooling.every((r) => Number(r[3]) > 0) && /on 8 of 8 prompts/.test(won) && await page.$('#probe-fooling-result img.probe-picture'),
    `${tag} a fooling image beats the best of 200 world scenes on all 8 prompts: margins ${fooling.map((r) => r[3]).join(', ')}`);
  const gap = await run('gap');
  check(gap.length === 7 && await page.$('#probe-gap-result svg'), `${tag} the modality gap: 7 shifts and the scatter`);

  for (const [width, height] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width, height });
    const findings = await axeFindings(page);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(findings.length === 0 && wide <= width, `${tag} ${width} px: ${findings.length} serious axe-core findings, page ${wide} px wide${findings.map((f) => '\n       ' + f).join('')}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** The Speed page: a bad plan is refused in words; a plan is timed on this mode's backend (medians, JSON saved); Cancel keeps what was timed; axe at both widths. */
async function speedChecks(page, mode) {
  const tag = `[${mode}] speed:`;
  await page.click('nav a[href="#speed"]');
  await page.waitForSelector('#speed-run');
  const plan = async (batches, texts, runs) => {
    await page.fill('#speed-batches', batches);
    await page.fill('#speed-texts', texts);
    await page.fill('#speed-runs', runs);
  };
  await plan('1, 4', '4', '0');
  await page.click('#speed-run');
  await page.waitForSelector('#speed-error');
  const refused = await page.textContent('#speed-error');
  check(/runs: at least 1/.test(refused), `${tag} runs 0 is refused in words: "${refused}"`);
  await plan('1, 4', 'x', '3');
  await page.click('#speed-run');
  await page.waitForFunction(() => /prompts: `x`/.test(document.querySelector('#speed-error')?.textContent ?? ''));
  check(true, `${tag} a word where a number belongs is named`);

  await plan('1, 4', '4', '3');
  await page.click('#speed-run');
  await page.waitForSelector('#speed-report[data-report]', { timeout: 300_000 });
  const saved = JSON.parse(await page.getAttribute('#speed-report', 'data-report'));
  const r = saved.report;
  const times = [...r.image.flatMap((t) => t.seconds), ...(r.text ?? [])];
  check(r.complete && r.image.map((t) => t.batch).join() === '1,4' && r.image.every((t) => t.seconds.length === 3) && r.text?.length === 3
    && times.every((x) => Number.isFinite(x) && x > 0),
    `${tag} batches 1 and 4 and 4 prompts, 3 timed calls each: ${times.map((x) => (x * 1000).toFixed(1)).join(', ')} ms`);
  const summary = await page.textContent('#speed-summary');
  check(summary.startsWith('world-clip') && summary.includes(mode === 'webgpu' ? 'WebGPU' : 'CPU'), `${tag} it says what ran where: "${summary}"`);
  const rows = await page.$$eval('#speed-report tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  check(rows.length === 3 && rows[2][0] === 'text embedding, 4 prompts' && / images$/.test(rows[1][2]), `${tag} the table: ${rows.map((x) => x.slice(0, 3).join(' / ')).join('; ')}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#speed-save')]);
  const file = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  check(JSON.stringify(file) === JSON.stringify(saved), `${tag} Save JSON gives the measurement (${download.suggestedFilename()})`);
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width, height });
    const findings = await axeFindings(page);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(findings.length === 0 && wide <= width, `${tag} ${width} px: ${findings.length} serious axe-core findings, page ${wide} px wide${findings.map((f) => '\n       ' + f).join('')}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // Cancel between calls: the report keeps the calls timed so far.
  await plan('16', '0', '400');
  await page.click('#speed-run');
  await page.waitForFunction(() => /timing/.test(document.querySelector('.job')?.textContent ?? ''), null, { timeout: 60_000 });
  await page.click('.job-cancel');
  await page.waitForFunction(() => /cancelled part way/.test(document.querySelector('#speed-summary')?.textContent ?? ''), null, { timeout: 120_000 });
  const part = JSON.parse(await page.getAttribute('#speed-report', 'data-report')).report;
  check(!part.complete && part.image[0].seconds.length < 400, `${tag} Cancel stops it after ${part.image[0].seconds.length} of 400 calls, and says so`);
}

/** The Audit page: the association test and the folder audit equal the CLI's numbers; report; axe; phone width. */
async function auditChecks(page, base, mode) {
  const tag = `[${mode}] audit:`;
  const want = plan.audit;
  await page.goto(`${base}#embed`);
  await statusMatches(page, /world-clip: int8/);
  await page.click('#clear');
  await page.goto(`${base}#audit`);
  await page.waitForFunction(() => /glim/.test(document.querySelector('#audit-a-name')?.value ?? ''), null, { timeout: 60_000 });
  await page.click('#audit-run-associations');
  await page.waitForSelector('#audit-association-table tbody tr', { timeout: 120_000 });
  const rows = await page.$$eval('#audit-association-table tbody tr', (trs) => trs.map((tr) => ({
    target: tr.querySelector('th').textContent, s: Number(tr.querySelectorAll('td')[0].textContent), flagged: tr.dataset.flagged === 'true' })));
  const flagged = rows.filter((r) => r.flagged).map((r) => r.target).join(',');
  let worst = 0;
  for (const t of want.cli_associations.targets) {
    const ours = rows.find((r) => r.target === t.target);
    worst = Math.max(worst, ours ? Math.abs(ours.s - t.s) : 1);
  }
  check(rows.length === 8 && flagged === 'pilot,doctor,guard,artist,nurse,chef' && worst < 1e-3,
    `${tag} 8 role words, flagged ${flagged} (the skewed ones), s within ${worst.toExponential(1)} of the CLI's (limit 1e-3, 4 decimals shown)`);
  const [assocDownload] = await Promise.all([page.waitForEvent('download'), page.click('#audit-associations-json')]);
  const assoc = JSON.parse(fs.readFileSync(await assocDownload.path(), 'utf8'));
  const pPage = assoc.targets.map((t) => t.test.p_value).join(',');
  const pCli = want.cli_associations.targets.map((t) => t.test.p_value).join(',');
  check(assoc.kind === 'associations' && pPage === pCli && Math.abs(assoc.weat.d - want.cli_associations.weat.d) < 1e-4 && assoc.model.sha256.length === 64,
    `${tag} the saved JSON has the CLI's p-values (${pPage}) and WEAT d (${assoc.weat.d.toFixed(4)} vs ${want.cli_associations.weat.d.toFixed(4)}), with the model's sha256`);

  // The folder: the page's images, the labels CSV, the same clustering as the CLI.
  await page.setInputFiles('#audit-folder-picker', want.folder);
  await page.setInputFiles('#audit-labels', want.labels);
  await page.waitForFunction(() => /labels\.csv/.test(document.querySelector('#audit-csvs')?.textContent ?? ''));
  // Until every image is embedded, a run audits fewer: run again until all are in.
  const started = Date.now();
  let summary = '';
  while (Date.now() - started < 300_000) {
    await page.click('#audit-run-folder');
    await page.waitForFunction(() => document.querySelector('#audit-folder-summary') || document.querySelector('#audit-error'), null, { timeout: 120_000 });
    summary = (await page.textContent('#audit-folder-summary').catch(() => '')) ?? '';
    if (new RegExp(`^${want.count} images`).test(summary)) break;
    await page.waitForTimeout(2000);
  }
  const [folderDownload] = await Promise.all([page.waitForEvent('download'), page.click('#audit-folder-json')]);
  const folder = JSON.parse(fs.readFileSync(await folderDownload.path(), 'utf8'));
  const cli = want.cli_folder;
  const sizes = (r) => r.groups.map((g) => g.n).join(',');
  const shares = (r) => r.composition[0].values.map((v) => v.count).join(',');
  check(folder.images === want.count && Math.abs(folder.ari - cli.ari) < 1e-9 && folder.ari >= 0.8 && sizes(folder) === sizes(cli) && shares(folder) === shares(cli),
    `${tag} ${summary.trim()}: ARI ${folder.ari?.toFixed(3)} (CLI ${cli.ari.toFixed(3)}), groups ${sizes(folder)} (CLI ${sizes(cli)}), perceived ${shares(folder)} (CLI ${shares(cli)})`);

  fs.mkdirSync(plan.out_dir, { recursive: true });
  const folder60 = path.join(plan.out_dir, `audit-${mode}-folder-60.json`);
  fs.copyFileSync(await folderDownload.path(), folder60);
  const [weightsDownload] = await Promise.all([page.waitForEvent('download'), page.click('#audit-weights-csv')]);
  const weightLines = fs.readFileSync(await weightsDownload.path(), 'utf8').trim().split('\n');
  const weightSum = weightLines.slice(1).reduce((sum, l) => sum + Number(l.split(',').pop()), 0);
  check(weightLines[0] === 'file,weight' && weightLines.length === want.count + 1 && Math.abs(weightSum / want.count - 1) < 1e-6,
    `${tag} the resampling weights CSV: ${weightLines.length - 1} files, mean weight ${(weightSum / want.count).toFixed(6)}`);

  // The inversion probe, judged by the site's world-judge: first cancelled
  // after its first picture, then in full against the CLI's run.
  const probeCli = want.cli_probe;
  await page.fill('#audit-probe-prompts', 'a photo of a chef');
  await page.dispatchEvent('#audit-probe-prompts', 'change');
  await page.fill('#audit-probe-steps', '20');
  await page.dispatchEvent('#audit-probe-steps', 'change');
  const judge = await page.$eval('#audit-probe-judge', (s) => s.value);
  await page.fill('#audit-probe-seeds', '8');
  await page.dispatchEvent('#audit-probe-seeds', 'change');
  await page.click('#audit-run-probe');
  await page.waitForSelector('#audit-probe-grid figure', { timeout: 300_000 });
  await page.click('.job-cancel');
  await page.waitForSelector('#audit-probe-warnings', { timeout: 120_000 });
  const stopped = await page.textContent('#audit-probe-warnings');
  const cancelledCount = await page.$$eval('#audit-probe-grid figure', (f) => f.length);
  check(judge === 'world-judge' && /stopped after \d+ of 16 inversions/.test(stopped) && cancelledCount < 16,
    `${tag} probe judged by ${judge}; Cancel after the first picture: "${stopped.trim()}" (${cancelledCount} pictures kept)`);
  // NSFW drift: LAION's detector is read in the worker; the world model's 48-d embeddings are not what it reads.
  await page.setInputFiles('#audit-probe-nsfw', want.safety_detector);
  const nsfwName = await page.textContent('#audit-probe-nsfw-name');
  await page.click('#audit-run-probe');
  await page.waitForSelector('#audit-error', { timeout: 120_000 });
  const nsfwError = await page.textContent('#audit-error');
  check(/clip_autokeras_nsfw_b32\.zip/.test(nsfwName) && /NSFW-drift probe: LAION's detector reads OpenAI CLIP ViT-B\/32 image embeddings \(512 numbers\); world-clip has 48/.test(nsfwError),
    `${tag} NSFW drift with the world model: "${nsfwError.trim()}"`);
  await page.click('#audit-probe-nsfw-off');

  await page.fill('#audit-probe-seeds', '1');
  await page.dispatchEvent('#audit-probe-seeds', 'change');
  const probeStarted = Date.now();
  await page.click('#audit-run-probe');
  await page.waitForFunction(() => document.querySelectorAll('#audit-probe-table tbody tr').length === 2 && !document.querySelector('#audit-probe-warnings'), null, { timeout: 600_000 });
  const probeSeconds = (Date.now() - probeStarted) / 1000;
  const [probeDownload] = await Promise.all([page.waitForEvent('download'), page.click('#audit-probe-json')]);
  const probe = JSON.parse(fs.readFileSync(await probeDownload.path(), 'utf8'));
  const judged = (r) => r.images.map((i) => i.judged).join(',');
  const shifts = (r) => r.prompts.filter((p) => !p.baseline).map((p) => p.log_odds_shift);
  const shiftGap = Math.max(...shifts(probe).map((v, i) => Math.abs(v - shifts(probeCli)[i])));
  const pictures = await page.$$eval('#audit-probe-grid img', (imgs) => imgs.filter((i) => i.naturalWidth > 0 && i.alt).length);
  check(probe.kind === 'probe' && probe.judge?.name === 'world-judge' && judged(probe) === judged(probeCli) && pictures === 2
    && shifts(probe)[0] < 0 && shiftGap < 1,
    `${tag} probe in ${probeSeconds.toFixed(0)} s: judged ${judged(probe)} (CLI ${judged(probeCli)}), log-odds shifts ${shifts(probe).map((v) => v.toFixed(2))} (CLI ${shifts(probeCli).map((v) => v.toFixed(2))}, within ${shiftGap.toFixed(2)}), ${pictures} pictures with alt text`);

  const [report] = await Promise.all([page.waitForEvent('download'), page.click('#audit-report')]);
  const html = fs.readFileSync(await report.path(), 'utf8');
  const firstReport = path.join(plan.out_dir, `audit-${mode}-report-1.html`);
  fs.copyFileSync(await report.path(), firstReport);
  check(/CLIP-perceived/.test(html) && /<svg/.test(html) && /id="audits"/.test(html) && /Inversion probe/.test(html) && !/https?:\/\//.test(html),
    `${tag} the HTML report is self-contained (${(html.length / 1024).toFixed(0)} KiB, charts, the probe, the audits inside, no links out)`);

  for (const [width, height] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    const findings = await axeFindings(page);
    check(findings.length === 0, `${tag} ${width} px with results: ${findings.length} serious axe-core findings${findings.map((f) => '\n       ' + f).join('')}`);
    const wide = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      out: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
        && !e.closest('.table-wrap') && !e.closest('.chart')).slice(0, 3).map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')}`),
    }));
    if (width === 390) check(wide.page <= 390 && wide.out.length === 0, `${tag} fits 390 px (page ${wide.page} px wide${wide.out.length ? '; sticking out: ' + wide.out.join(', ') : ''})`);
    fs.mkdirSync(plan.out_dir, { recursive: true });
    await page.screenshot({ path: path.join(plan.out_dir, `audit-${mode}-${width}.png`), fullPage: width === 1280 });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  page.on('filechooser', () => {});
  await page.evaluate(() => 0);
  const presses = await tabTo(page, '#audit-labels');
  const chooser = page.waitForEvent('filechooser', { timeout: 5_000 }).then((c) => c, () => null);
  if (presses > 0) await page.keyboard.press('Enter');
  check(presses > 0 && (await chooser) !== null, `${tag} the labels picker: reached with ${presses} Tab presses, Enter opens it`);

  // CLIP-debias on the doctor/nurse shortcut: the page's images replaced by that folder.
  await page.goto(`${base}#embed`);
  await page.click('#clear');
  await page.goto(`${base}#audit`);
  await page.setInputFiles('#audit-folder-picker', want.debias_folder);
  await page.setInputFiles('#audit-labels', want.debias_labels);
  await page.waitForFunction(() => /debias-labels\.csv/.test(document.querySelector('#audit-csvs')?.textContent ?? ''));
  const debiasStarted = Date.now();
  let debiasSummary = '';
  while (Date.now() - debiasStarted < 600_000) {
    await page.click('#audit-run-folder');
    await page.waitForFunction((before) => (document.querySelector('#audit-folder-summary')?.textContent ?? '') !== before || document.querySelector('#audit-error'), debiasSummary, { timeout: 120_000 }).catch(() => {});
    debiasSummary = (await page.textContent('#audit-folder-summary').catch(() => '')) ?? '';
    if (new RegExp(`^${want.debias_count} images`).test(debiasSummary)) break;
    await page.waitForTimeout(2000);
  }
  const [folderB] = await Promise.all([page.waitForEvent('download'), page.click('#audit-folder-json')]);
  const folder300 = path.join(plan.out_dir, `audit-${mode}-folder-300.json`);
  fs.copyFileSync(await folderB.path(), folder300);
  await page.fill('#audit-debias-target', 'role');
  await page.dispatchEvent('#audit-debias-target', 'change');
  const trainStarted = Date.now();
  await page.click('#audit-run-debias');
  await page.waitForSelector('#audit-debias-table tbody tr', { timeout: 600_000 });
  const trainSeconds = (Date.now() - trainStarted) / 1000;
  const [debiasDownload] = await Promise.all([page.waitForEvent('download'), page.click('#audit-debias-json')]);
  const debias = JSON.parse(fs.readFileSync(await debiasDownload.path(), 'utf8'));
  const dcli = want.cli_debias;
  const methods = (r) => r.methods.map((m) => m.method).join(',');
  const gap = Math.max(...debias.methods.flatMap((m, i) => [
    Math.abs(m.overall_accuracy.value - dcli.methods[i].overall_accuracy.value), Math.abs(m.worst_group_accuracy.value - dcli.methods[i].worst_group_accuracy.value)]));
  const figure = (r, name) => { const m = r.methods.find((x) => x.method === name); return `${(100 * m.overall_accuracy.value).toFixed(1)}%/${(100 * m.worst_group_accuracy.value).toFixed(1)}%`; };
  check(debias.kind === 'debias' && methods(debias) === methods(dcli) && debias.test_items === dcli.test_items && gap <= 0.02 && debias.ari >= 0.8,
    `${tag} debias of ${want.debias_count} images in ${trainSeconds.toFixed(0)} s: ${methods(debias)}; overall/worst ERM ${figure(debias, 'erm')} (CLI ${figure(dcli, 'erm')}), CLIP-debias ${figure(debias, 'clip-debias')} (CLI ${figure(dcli, 'clip-debias')}), largest gap ${(100 * gap).toFixed(1)} points, ARI ${debias.ari?.toFixed(3)}`);

  // Two saved folder audits side by side.
  await page.setInputFiles('#audit-compare-picker', [folder60, folder300]);
  await page.waitForSelector('#audit-compare-table tbody tr', { timeout: 30_000 });
  const compared = await page.$$eval('#audit-compare-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  const ariRow = compared.find((r) => r[0] === 'ARI');
  check(ariRow && ariRow[1] === '1.000' && compared.length >= 3,
    `${tag} two saved audits compared: ${compared.length} figures (ARI ${ariRow?.slice(1).join(' / ')})`);
  const [comparison] = await Promise.all([page.waitForEvent('download'), page.click('#audit-compare-report')]);
  const comparisonHtml = fs.readFileSync(await comparison.path(), 'utf8');
  check(/Comparison: audit-/.test(comparisonHtml), `${tag} the comparison saves as one HTML file (${(comparisonHtml.length / 1024).toFixed(0)} KiB)`);
  // Two whole reports of this page: their first audits of one kind (the association tests) side by side.
  const [second] = await Promise.all([page.waitForEvent('download'), page.click('#audit-report')]);
  const secondReport = path.join(plan.out_dir, `audit-${mode}-report-2.html`);
  fs.copyFileSync(await second.path(), secondReport);
  await page.setInputFiles('#audit-compare-picker', [firstReport, secondReport]);
  await page.waitForFunction(() => [...document.querySelectorAll('#audit-compare-table tbody th')].some((th) => th.textContent === 's(pilot)'), null, { timeout: 30_000 });
  const reportRows = await page.$$eval('#audit-compare-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  const pilot = reportRows.find((r) => r[0] === 's(pilot)');
  check(pilot && pilot[3] === '+0.000', `${tag} two HTML reports compared by their association tests: s(pilot) ${pilot?.slice(1).join(' / ')}`);
  const findings = await axeFindings(page);
  check(findings.length === 0, `${tag} with the probe, debias and comparison shown: ${findings.length} serious axe-core findings${findings.map((f) => '\n       ' + f).join('')}`);
  await page.goto(`${base}#embed`);
  await page.click('#clear');
  await auditScaleChecks(page, base, mode);
}

/**
 * A 2,000-image folder audit: embedding shows progress, a reload part-way
 * loses nothing (adding the folder again takes what was done from this
 * browser's cache), memory stays under 1.5 GB, and the audit equals the CLI's.
 */
async function auditScaleChecks(page, base, mode) {
  const tag = `[${mode}] audit, ${plan.audit.big_count} images:`;
  const want = plan.audit;
  await page.goto(`${base}#audit`);
  const memory = memorySampler();
  const started = Date.now();
  await page.setInputFiles('#audit-folder-picker', want.big_folder);
  // Part-way (a third embedded), the page is reloaded.
  await page.waitForFunction(() => {
    const p = document.querySelector('.job progress');
    return p && Number(p.value) >= 0.3 && Number(p.value) < 0.9;
  }, null, { timeout: 600_000, polling: 100 });
  const progressLine = (await page.textContent('.job .job-line')) ?? '';
  await page.reload();
  await statusMatches(page, /world-clip: int8/, 300_000);
  await page.goto(`${base}#audit`);
  await page.setInputFiles('#audit-folder-picker', want.big_folder);
  await page.setInputFiles('#audit-labels', want.big_labels);
  // Past half way, Cancel; then Resume finishes the rest.
  await page.waitForFunction(() => {
    const p = document.querySelector('.job progress');
    return p && Number(p.value) >= 0.5 && Number(p.value) < 0.95;
  }, null, { timeout: 600_000, polling: 100 });
  await page.click('.job .job-cancel');
  await page.goto(`${base}#embed`);
  await page.waitForSelector('#resume', { timeout: 60_000 });
  const cancelledCounts = await page.textContent('#counts');
  await page.click('#resume');
  const counts = await waitForCounts(page, want.big_count, 900_000);
  const seconds = (Date.now() - started) / 1000;
  const before = Number(counts.match(/(\d+) of them done before/)?.[1] ?? 0);
  const cancelled = Number(cancelledCounts.match(/(\d+) cancelled/)?.[1] ?? 0);
  check(/embedding images/.test(progressLine) && before >= 0.3 * want.big_count && cancelled > 0 && counts.startsWith(`${want.big_count} images: ${want.big_count} embedded`),
    `${tag} reloaded at "${progressLine.trim()}"; the folder added again, cancelled past half way ("${cancelledCounts}"), resumed: "${counts}" (${seconds.toFixed(0)} s in all)`);
  await page.goto(`${base}#audit`);
  await page.click('#audit-run-folder');
  await page.waitForFunction((n) => new RegExp(`^${n} images`).test(document.querySelector('#audit-folder-summary')?.textContent ?? ''), want.big_count, { timeout: 300_000 });
  memory.stop();
  const heap = await computeWorker(page).then((w) => w.evaluate(() => wasm_bindgen.test_hook_heap_bytes?.() ?? 0)).catch(() => 0);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#audit-folder-json')]);
  const folder = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  const cli = want.cli_big;
  const sizes = (r) => r.groups.map((g) => g.n).join(',');
  const shares = (r) => r.composition[0].values.map((v) => v.count).join(',');
  check(folder.images === want.big_count && Math.abs(folder.ari - cli.ari) < 1e-9 && sizes(folder) === sizes(cli) && shares(folder) === shares(cli),
    `${tag} ARI ${folder.ari?.toFixed(3)} (CLI ${cli.ari.toFixed(3)}), groups ${sizes(folder)} (CLI ${sizes(cli)}), perceived ${shares(folder)} (CLI ${shares(cli)})`);
  check(memory.peak.renderer > 0 && memory.peak.renderer < 1.5e9,
    `${tag} renderer memory peak ${(memory.peak.renderer / 1e6).toFixed(0)} MB (limit 1500 MB; GPU process ${(memory.peak.gpu / 1e6).toFixed(0)} MB, the worker's wasm memory ${(heap / 1e6).toFixed(0)} MB)`);
  await page.goto(`${base}#embed`);
  await page.click('#clear');
}

/** The Hub checks alone, `plan.repeat` times, each in a new browser (empty caches) against reset servers. */
async function repeatHubChecks(mode, servers) {
  for (let run = 1; run <= plan.repeat; run += 1) {
    servers.reset();
    const { browser, page, requests, consoleErrors } = await launch(mode);
    try {
      console.log(`     hub checks, run ${run}/${plan.repeat}`);
      await openApp(page, servers.base, mode);
      await hubChecks(page, servers, mode, requests);
    } catch (e) {
      check(false, `[${mode}] run ${run}: ${e.message.split('\n')[0]}`);
    } finally {
      privacyChecks(requests, servers, mode, consoleErrors);
      await browser.close();
    }
  }
}

/**
 * A random full-size ViT-B/32 from the stand-in Hub: download (range requests
 * through the redirect), sha256, int8 as it streams, cache, embedding and
 * inversion steps against the CLI; times and peak memory for the README.
 */
async function runFullSize(mode, servers) {
  const tag = `[${mode}] full-size:`;
  const want = plan.full_size;
  const { browser, page, requests, consoleErrors } = await launch(mode);
  const figures = { mode };
  let stage = 'start';
  try {
    await page.goto(`${servers.base}?hub=${encodeURIComponent(servers.base + 'hub')}`);
    await statusMatches(page, /world-clip: int8/);
    const loadMemory = memorySampler();
    const memory = memorySampler();
    let t = Date.now();
    await page.fill('#hub-id', want.repo);
    await page.click('#hub-load');
    await statusMatches(page, new RegExp(`^${want.repo}: int8|could not load`), 1_800_000);
    figures.load_s = (Date.now() - t) / 1000;
    loadMemory.stop();
    const heap = await computeWorker(page).then((w) => w.evaluate(() => wasm_bindgen.test_hook_heap_bytes?.() ?? null)).catch(() => null);
    if (heap) figures.worker_wasm_heap_mb = heap / 1e6;
    figures.load_peak_renderer_mb = loadMemory.peak.renderer / 1e6;
    figures.load_peak_gpu_process_mb = loadMemory.peak.gpu / 1e6;
    const status = await page.textContent('#model-status');
    check(/^cliplens\/b32: int8/.test(status), `${tag} loaded in ${figures.load_s.toFixed(0)} s (renderer peak ${figures.load_peak_renderer_mb.toFixed(0)} MB): "${status}"`);
    if (plan.load_only) return;
    check(/sha256 checked/.test(status), `${tag} the download was checked against the listed sha256`);
    figures.download_mb_s = want.file_bytes / 1e6 / figures.load_s;
    // SwiftShader takes minutes to start again after a reload that freed a
    // ViT-B's buffers: timed apart from the cached load.
    t = Date.now();
    stage = 'reload';
    await page.reload();
    await statusMatches(page, /world-clip: int8/, 900_000);
    figures.reload_s = (Date.now() - t) / 1000;
    t = Date.now();
    stage = 'cached load';
    await page.goto(`${servers.base}?hub=${encodeURIComponent(servers.base + 'hub')}&model=hub:${want.repo}`);
    await statusMatches(page, new RegExp(`^${want.repo}: int8.*from this browser's cache`), 600_000);
    figures.cached_load_s = (Date.now() - t) / 1000;
    check(true, `${tag} from the cache in ${figures.cached_load_s.toFixed(0)} s`);
    t = Date.now();
    stage = 'prompts';
    await comparePrompts(page, plan.prompts, 1_800_000);
    figures.prompts_s = (Date.now() - t) / 1000;
    t = Date.now();
    stage = 'images';
    await page.setInputFiles('#image-files', plan.images);
    await waitForCounts(page, plan.images.length, 1_800_000);
    figures.embed_s_per_image = (Date.now() - t) / 1000 / plan.images.length;
    checkAgainstCli(await readTable(page), tag);
    await page.goto(`${servers.base}?hub=${encodeURIComponent(servers.base + 'hub')}&model=hub:${want.repo}#invert`);
    await statusMatches(page, new RegExp(`^${want.repo}: int8`), 600_000);
    stage = 'inversion';
    await setInvertSettings(page, { ...want.invert, preset: 'quick' });
    t = Date.now();
    await page.click('#invert-start');
    await page.waitForFunction(() => /done:|could not/.test(document.querySelector('#invert-status')?.textContent ?? ''), null, { timeout: 1_800_000 });
    figures.invert_s_per_step = (Date.now() - t) / 1000 / want.invert.steps;
    const similarity = Number((await studioStatus(page)).match(/done: similarity ([\d.-]+)/)?.[1]);
    check(Math.abs(similarity - want.invert.cli.similarity) < 1e-3, `${tag} ${want.invert.steps} inversion steps: similarity ${similarity} vs the CLI's ${want.invert.cli.similarity.toFixed(4)}`);
    // Cancel in the middle of a step: stopped within a second, the image so far kept.
    stage = 'cancel';
    const before = await page.$$eval('.gallery .item', (items) => items.length);
    await page.fill('#invert-steps', '50');
    await page.dispatchEvent('#invert-steps', 'change');
    await page.click('#invert-start');
    await page.waitForFunction(() => Number(document.querySelector('#invert-status')?.textContent.match(/step (\d+) of/)?.[1]) >= 1, null, { timeout: 600_000 });
    await page.waitForTimeout(500);
    const t1 = Date.now();
    await page.click('#invert-cancel');
    await page.waitForFunction(() => /cancelled/.test(document.querySelector('#invert-status')?.textContent ?? ''), null, { timeout: 60_000 });
    figures.cancel_ms = Date.now() - t1;
    await page.waitForFunction((n) => document.querySelectorAll('.gallery .item').length === n, before + 1, { timeout: 600_000 });
    check(figures.cancel_ms < 1000, `${tag} cancelled mid-step in ${figures.cancel_ms} ms (limit 1000): "${await studioStatus(page)}"; the image so far joined the gallery`);
    memory.stop();
    figures.peak_renderer_mb = memory.peak.renderer / 1e6;
    figures.peak_gpu_process_mb = memory.peak.gpu / 1e6;
  } catch (e) {
    check(false, `${tag} at ${stage}: ${e.message.split('\n')[0]}`);
  } finally {
    privacyChecks(requests, servers, mode, consoleErrors);
    console.log(`     figures: ${JSON.stringify(figures)}`);
    await browser.close();
  }
}

const servers = await serveAll(path.resolve(plan.dist), plan.headers_file, plan.hub);
for (const mode of plan.modes) {
  if (plan.full_size) await runFullSize(mode, servers);
  else await runMode(mode, servers);
}
servers.close();
console.log(failures === 0 ? 'browser tests: all passed' : `browser tests: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
