//! The privacy badge's figure, measured rather than promised: every request
//! that left the page's origin, from the page and from the worker (which
//! makes the model downloads), as the browser's resource timing lists them.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::shared::net::offsite_requests;

#[derive(Clone, Copy)]
pub struct Requests {
    page: RwSignal<Vec<String>>,
    worker: RwSignal<Vec<String>>,
    /// Requests of workers that were replaced (their lists ended with them).
    earlier_workers: RwSignal<Vec<String>>,
}

impl Requests {
    pub fn new() -> Self {
        Requests { page: RwSignal::new(Vec::new()), worker: RwSignal::new(Vec::new()), earlier_workers: RwSignal::new(Vec::new()) }
    }

    /// The worker's full list so far (it sends it whole each time).
    pub fn worker_reported(self, urls: Vec<String>) {
        // A shorter list is a new worker's: keep the old one's too.
        if urls.len() < self.worker.with_untracked(Vec::len) {
            let old = self.worker.get_untracked();
            self.earlier_workers.update(|e| e.extend(old));
        }
        self.worker.set(urls);
    }

    /// Reads the page's own resource timing now and every second.
    pub fn watch_page(self) {
        if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
            performance.set_resource_timing_buffer_size(100_000);
        }
        let page = self.page;
        let read = move || {
            let urls = offsite_requests();
            if page.with_untracked(|p| p.len() != urls.len()) {
                page.set(urls);
            }
        };
        read();
        let tick = Closure::<dyn FnMut()>::new(read);
        if let Some(w) = web_sys::window() {
            let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), 1000);
        }
        tick.forget();
    }

    /// Every off-site request so far.
    pub fn all(self) -> Vec<String> {
        let mut all = self.earlier_workers.get();
        all.extend(self.worker.get());
        all.extend(self.page.get());
        all
    }
}

/// The hosts of `urls`, each with its count, most first.
pub fn hosts(urls: &[String]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for url in urls {
        let host = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(url).to_string();
        match counts.iter_mut().find(|(h, _)| *h == host) {
            Some((_, n)) => *n += 1,
            None => counts.push((host, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1));
    counts
}
