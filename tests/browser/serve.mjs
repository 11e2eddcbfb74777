// A static server for the built app on 127.0.0.1, sending the same
// Content-Security-Policy header as `trunk serve` (read from Trunk.toml).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

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

export function serve(dist, csp) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
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
