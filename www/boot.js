// Starts the page's wasm. A file, not an inline script, so the
// Content-Security-Policy can forbid inline scripts.
import init from './app.js';

await init({ module_or_path: new URL('./app_bg.wasm', import.meta.url) });

// After one visit the app also opens offline (www/sw.js). Registered once the
// page runs, so the first visit's own downloads come first.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js').catch((e) => console.warn(`offline copy unavailable: ${e}`));
}
