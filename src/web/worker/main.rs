//! The web app's compute worker: a dedicated Web Worker that owns the model
//! and the GPU, so the page never stalls. It speaks `cliplens::protocol`.
//! Natively this program is empty; Trunk builds it for wasm32.

#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod jobs;
#[cfg(target_arch = "wasm32")]
mod start;

// The linker wraps every export of a wasm "command" (a program whose exports
// never call the constructors) so that it reruns all static constructors
// first: with burn's registries that cost ~100 ms per callback from JS.
// Calling them once here makes this a reactor: exports run as they are.
#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: runs once, first, before any code that relies on constructors.
    unsafe {
        __wasm_call_ctors();
    }
    #[cfg(target_arch = "wasm32")]
    start::start();
}
