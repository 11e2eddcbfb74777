//! The web app's compute worker: a dedicated Web Worker that owns the model
//! and the GPU, so the page never stalls. It speaks `cliplens::protocol`.
//! Natively this program is empty; Trunk builds it for wasm32.

#[cfg(target_arch = "wasm32")]
mod audit;
#[cfg(target_arch = "wasm32")]
mod concepts;
#[cfg(target_arch = "wasm32")]
mod hub;
#[cfg(target_arch = "wasm32")]
mod invert;
#[cfg(target_arch = "wasm32")]
mod jobs;
#[cfg(target_arch = "wasm32")]
mod probes;
#[cfg(target_arch = "wasm32")]
mod start;

#[cfg(target_arch = "wasm32")]
#[path = "../shared/mod.rs"]
mod shared;

fn main() {
    #[cfg(target_arch = "wasm32")]
    shared::reactor::run_static_constructors_once();
    #[cfg(target_arch = "wasm32")]
    start::start();
}
