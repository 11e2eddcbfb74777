//! Shared by the page and the worker binaries (each includes this file).
//!
//! The linker wraps every export of a wasm "command" (a program whose exports
//! never call the constructors) so that it reruns all static constructors
//! first: with burn's registries that cost ~100 ms per callback from JS.
//! Calling them once, first thing in `main`, makes the program a reactor:
//! exports then run as they are.

unsafe extern "C" {
    fn __wasm_call_ctors();
}

pub fn run_static_constructors_once() {
    // SAFETY: called once, first in `main`, before any code that relies on constructors.
    unsafe { __wasm_call_ctors() }
}
