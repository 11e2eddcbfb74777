//! The web app's page: Leptos UI only. Model work happens in the worker
//! (`src/web/worker`); math comes from the library (`cliplens::compare`).
//! Natively this program is empty; Trunk builds it for wasm32.

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod audit;
#[cfg(target_arch = "wasm32")]
mod concepts;
#[cfg(target_arch = "wasm32")]
mod embed;
#[cfg(target_arch = "wasm32")]
mod files;
#[cfg(target_arch = "wasm32")]
mod gallery;
#[cfg(target_arch = "wasm32")]
mod invert;
#[cfg(target_arch = "wasm32")]
mod jobs;
#[cfg(target_arch = "wasm32")]
mod models;
#[cfg(target_arch = "wasm32")]
mod privacy;
#[cfg(target_arch = "wasm32")]
mod probes;
#[cfg(target_arch = "wasm32")]
mod route;
#[cfg(target_arch = "wasm32")]
mod shell;
#[cfg(target_arch = "wasm32")]
mod speed;
#[cfg(target_arch = "wasm32")]
mod worker_link;

#[cfg(target_arch = "wasm32")]
#[path = "../shared/mod.rs"]
mod shared;

fn main() {
    #[cfg(target_arch = "wasm32")]
    shared::reactor::run_static_constructors_once();
    #[cfg(target_arch = "wasm32")]
    {
        console_error_panic_hook::set_once();
        leptos::mount::mount_to_body(shell::App);
    }
}
