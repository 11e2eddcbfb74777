//! Browser plumbing both wasm binaries (the page and the worker) use: the
//! Cache Storage, downloads, timers, and the reactor start-up. Written for
//! `js_sys::global()`, so the same code runs in a window and in a worker.

// Each binary uses a different part of these helpers.
#![allow(dead_code)]
pub mod cache;
pub mod net;
pub mod reactor;
