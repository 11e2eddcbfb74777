// Servers for the browser tests, all on 127.0.0.1 (three origins: ports):
// - the app: the built dist/, with the headers the project ships (www/_headers),
//   and under /hub/ a stand-in for the Hugging Face Hub;
// - the Hub's download host ("CDN"): the Hub answers resolve/ for weights with
//   a redirect to another origin, as huggingface.co does (to its LFS/Xet CDN),
//   which serves byte ranges with CORS;
// - a foreign site, which the app must never reach (it records every hit) and
//   which tries to frame the app.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.md': 'text/markdown',
  '.safetensors': 'application/octet-stream',
};

/** The headers of www/_headers (the ones a deployment sends with every file). */
export function shippedHeaders(headersFile) {
  const headers = {};
  for (const line of fs.readFileSync(headersFile, 'utf8').split('\n')) {
    if (!line.startsWith('  ')) continue;
    const at = line.indexOf(': ');
    headers[line.slice(0, at).trim()] = line.slice(at + 2).trim();
  }
  if (!headers['Content-Security-Policy']) throw new Error(`${headersFile}: no Content-Security-Policy`);
  return headers;
}

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
// Files and digests are read once: a 605 MB checkpoint is asked for in dozens of ranges.
const memo = new Map();
const remember = (key, make) => { if (!memo.has(key)) memo.set(key, make()); return memo.get(key); };
const read = (file) => remember(`bytes:${file}`, () => fs.readFileSync(file));
const digest = (file, algorithm) => remember(`${algorithm}:${file}`, () => crypto.createHash(algorithm).update(read(file)).digest('hex'));
const origin = (server) => `http://127.0.0.1:${server.address().port}`;

/**
 * Starts the three servers. `hub` maps `owner/name` to `{ dir }` plus, to play
 * the Hub's failures: `sha` (the digest its API lists instead of the real one),
 * `noApi` (no file listing, as a bare mirror), `breakAt` (the first download
 * reaching this byte breaks off there, once).
 */
export async function serveAll(dist, headersFile, hub = {}) {
  const log = { cdn: [], foreign: [], app: [] };
  const broken = new Set();
  const cdn = await listen(http.createServer((req, res) => {
    log.cdn.push({ url: req.url, method: req.method, range: req.headers.range ?? null });
    const cors = {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'Range',
      'Access-Control-Expose-Headers': 'Content-Range, Content-Length, ETag',
    };
    if (req.method === 'OPTIONS') { res.writeHead(204, cors).end(); return; }
    const m = req.url.match(/^\/cdn\/([\w.-]+\/[\w.-]+)\/([\w.-]+)$/);
    const repo = m && hub[m[1]];
    const file = repo && path.join(repo.dir, m[2]);
    if (!file || !fs.existsSync(file)) { res.writeHead(404, cors).end('not found'); return; }
    const bytes = read(file);
    // Like a CDN's: an ETag that is not the sha256, which the app must not rely on.
    const headers = { ...cors, 'Content-Type': 'application/octet-stream', 'ETag': `"cdn-${digest(file, 'md5')}"`, 'Accept-Ranges': 'bytes', 'Cache-Control': 'no-store' };
    let [start, end] = [0, bytes.length];
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
    if (range) {
      start = Number(range[1]);
      end = range[2] === '' ? bytes.length : Math.min(Number(range[2]) + 1, bytes.length);
      headers['Content-Range'] = `bytes ${start}-${end - 1}/${bytes.length}`;
    }
    headers['Content-Length'] = end - start;
    res.writeHead(range ? 206 : 200, headers);
    if (repo.breakAt !== undefined && !broken.has(m[1]) && start <= repo.breakAt && repo.breakAt < end) {
      broken.add(m[1]);
      // The connection drops after the browser has the response in hand (a
      // drop before that is a failed fetch, not a broken-off download).
      res.flushHeaders();
      res.write(bytes.subarray(start, repo.breakAt), () => setTimeout(() => res.destroy(), 300));
      return;
    }
    res.end(bytes.subarray(start, end));
  }));
  const cdnOrigin = origin(cdn);

  const foreign = await listen(http.createServer((req, res) => {
    log.foreign.push({ url: req.url, method: req.method });
    if (req.url.startsWith('/frame.html')) {
      const target = new URL(req.url, 'http://x').searchParams.get('src');
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(`<!doctype html><iframe id="app" src="${target}"></iframe>`);
      return;
    }
    res.writeHead(200, { 'Access-Control-Allow-Origin': '*' }).end('you should not see this');
  }));

  // The app's own headers; in these tests only, the stand-in CDN is also an
  // allowed connection, as https://*.hf.co is for the real Hub's.
  const headers = shippedHeaders(headersFile);
  headers['Content-Security-Policy'] = headers['Content-Security-Policy'].replace('connect-src ', `connect-src ${cdnOrigin} `);

  const app = await listen(http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    log.app.push(url.pathname);
    if (url.pathname.startsWith('/hub/')) { serveHub(hub, url.pathname, cdnOrigin, res); return; }
    let file = path.join(dist, decodeURIComponent(url.pathname));
    if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!fs.existsSync(file)) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  }));
  return {
    base: `${origin(app)}/`, cdnOrigin, foreignOrigin: origin(foreign), log,
    close() { app.close(); cdn.close(); foreign.close(); },
    /** Forgets the request logs and which downloads broke (for a repeated run). */
    reset() { broken.clear(); log.cdn.length = 0; log.foreign.length = 0; log.app.length = 0; },
  };
}

/**
 * The stand-in Hub under /hub/: `api/models/<repo>/tree/<rev>` lists the files
 * with each weights file's size and sha256 (`lfs.oid`), as the Hub's API does;
 * `<repo>/resolve/<rev>/<file>` serves small files itself and redirects
 * weights to the CDN's origin (302), as the Hub does for Git LFS files.
 */
function serveHub(hub, pathname, cdnOrigin, res) {
  const tree = pathname.match(/^\/hub\/api\/models\/([\w.-]+\/[\w.-]+)\/tree\/([\w.%-]+)$/);
  if (tree) {
    const repo = hub[tree[1]];
    if (!repo || repo.noApi) { res.writeHead(404).end('{"error":"not found"}'); return; }
    const entries = fs.readdirSync(repo.dir).filter((f) => fs.statSync(path.join(repo.dir, f)).isFile()).map((f) => {
      const file = path.join(repo.dir, f);
      const entry = { type: 'file', oid: digest(file, 'sha1'), size: read(file).length, path: f };
      if (f.endsWith('.safetensors')) entry.lfs = { oid: repo.sha ?? digest(file, 'sha256'), size: read(file).length, pointerSize: 135 };
      return entry;
    });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(entries));
    return;
  }
  const m = pathname.match(/^\/hub\/([\w.-]+\/[\w.-]+)\/resolve\/main\/([\w.-]+)$/);
  const repo = m && hub[m[1]];
  const file = repo && path.join(repo.dir, m[2]);
  if (!file || !fs.existsSync(file)) { res.writeHead(404).end('Entry not found'); return; }
  if (file.endsWith('.safetensors')) {
    res.writeHead(302, { Location: `${cdnOrigin}/cdn/${m[1]}/${m[2]}`, 'Cache-Control': 'no-store' }).end();
    return;
  }
  const bytes = read(file);
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
  res.end(bytes);
}
