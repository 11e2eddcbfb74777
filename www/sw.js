// The app's service worker: after one visit the app opens with the network
// off. Network first (an online visit always gets the deployed files, so a
// new deployment or `trunk serve` is never hidden behind a stale copy); the
// response is kept, and used when the network fails. Model weights are
// already kept by the worker (Cache Storage, by sha256), cross-origin
// requests (the Hugging Face Hub) and byte ranges pass through untouched.
// Nothing leaves the browser: the only requests are the page's own.
const CACHE = 'cliplens-app-v1';
const SHELL = [
  './', 'index.html', 'boot.js', 'app.js', 'app_bg.wasm', 'style.css', 'favicon.svg',
  'worker_loader.js', 'worker.js', 'worker_bg.wasm', 'gpu_hooks.js', 'models/manifest.json',
];

self.addEventListener('install', (event) => {
  // `force-cache`: the files this visit just loaded come from the HTTP cache where it has them.
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'force-cache' }))))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

function cacheable(request) {
  const url = new URL(request.url);
  return request.method === 'GET' && url.origin === self.location.origin && !request.headers.has('range')
    && !url.pathname.endsWith('.safetensors');
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (!cacheable(request)) return;
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      if (response.ok && response.type === 'basic') {
        const copy = response.clone();
        event.waitUntil(caches.open(CACHE).then((cache) => cache.put(request, copy)));
      }
      return response;
    } catch (offline) {
      const cached = await caches.match(request, { ignoreSearch: request.mode === 'navigate' });
      if (cached) return cached;
      throw offline;
    }
  })());
});
