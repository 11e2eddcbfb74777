//! The web app's page: Leptos UI only. Model work happens in the worker
//! (`src/web/worker`); math comes from the library (`cliplens::compare`).
//! Natively this program is empty; Trunk builds it for wasm32.

#[cfg(target_arch = "wasm32")]
mod embed;
#[cfg(target_arch = "wasm32")]
mod files;
#[cfg(target_arch = "wasm32")]
mod link;
#[cfg(target_arch = "wasm32")]
mod shell;

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
    {
        console_error_panic_hook::set_once();
        leptos::mount::mount_to_body(shell::App);
    }
}
