// A static server for the built app on 127.0.0.1, sending the same
// Content-Security-Policy header as `trunk serve` (read from Trunk.toml).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.md': 'text/markdown',
  '.safetensors': 'application/octet-stream',
};

/** The Content-Security-Policy that `trunk serve` sends ([serve.headers] of Trunk.toml). */
export function trunkCsp(trunkToml) {
  const text = fs.readFileSync(trunkToml, 'utf8');
  const line = text.match(/^"Content-Security-Policy"\s*=\s*"([^"]*)"/m);
  if (!line) throw new Error(`${trunkToml}: no Content-Security-Policy under [serve.headers]`);
  return line[1];
}

/**
 * A stand-in for the Hugging Face Hub under /hub/: `/hub/<owner>/<name>/resolve/main/<file>`
 * serves the files of `hub[owner/name].dir`, with each file's sha256 as its ETag, as the Hub
 * does for files kept in Git LFS (`etag` overrides it, to play a damaged download).
 */
function serveHub(hub, pathname, res) {
  const m = pathname.match(/^\/hub\/([\w.-]+\/[\w.-]+)\/resolve\/main\/([\w.-]+)$/);
  const repo = m && hub[m[1]];
  const file = repo && path.join(repo.dir, m[2]);
  if (!file || !fs.existsSync(file)) { res.writeHead(404).end('Entry not found'); return; }
  const bytes = fs.readFileSync(file);
  const sha = crypto.createHash('sha256').update(bytes).digest('hex');
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': bytes.length,
    'ETag': `"${repo.etag ?? sha}"`,
    'Cache-Control': 'no-store',
  });
  res.end(bytes);
}

export function serve(dist, csp, hub = {}) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname.startsWith('/hub/')) { serveHub(hub, url.pathname, res); return; }
    let file = path.join(dist, decodeURIComponent(url.pathname));
    if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!fs.existsSync(file)) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Security-Policy': csp,
      'Cache-Control': 'no-store',
    });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
