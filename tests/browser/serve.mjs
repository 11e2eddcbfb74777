// A static server for the built app on 127.0.0.1, sending the same
// Content-Security-Policy as `trunk serve` (read from Trunk.toml).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.md': 'text/markdown',
  '.safetensors': 'application/octet-stream',
};

/** The `[serve] csp` list of Trunk.toml, joined as a header value. */
export function trunkCsp(trunkToml) {
  const text = fs.readFileSync(trunkToml, 'utf8');
  const block = text.match(/^csp\s*=\s*\[([\s\S]*?)\]/m);
  if (!block) throw new Error(`${trunkToml}: no [serve] csp list`);
  return [...block[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('; ');
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
