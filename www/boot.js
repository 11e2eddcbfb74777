// Starts the page's wasm. A file, not an inline script, so the
// Content-Security-Policy can forbid inline scripts.
import init from './app.js';

await init({ module_or_path: new URL('./app_bg.wasm', import.meta.url) });
