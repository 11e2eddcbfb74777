//! The page's routes: one typed enum, read from and written to the URL's
//! hash (`#invert`). Hash routes, not `leptos_router`: the app must work
//! from any static host without rewrite rules, and leptos_router 0.8 routes
//! by path only (leptos-rs/leptos#2184); see docs/ARCHITECTURE.md.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Embed,
    Invert,
    Concepts,
    Audit,
    Probes,
    Speed,
    About,
}

impl Route {
    pub const ALL: [Route; 7] = [Route::Embed, Route::Invert, Route::Concepts, Route::Audit, Route::Probes, Route::Speed, Route::About];

    pub fn title(self) -> &'static str {
        match self {
            Route::Embed => "Embed & compare",
            Route::Invert => "Invert",
            Route::Concepts => "Concepts",
            Route::Audit => "Audit",
            Route::Probes => "Probes",
            Route::Speed => "Speed",
            Route::About => "About & privacy",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Route::Embed => "embed",
            Route::Invert => "invert",
            Route::Concepts => "concepts",
            Route::Audit => "audit",
            Route::Probes => "probes",
            Route::Speed => "speed",
            Route::About => "about",
        }
    }

    pub fn href(self) -> String {
        format!("#{}", self.slug())
    }

    /// The route a hash names; an unknown or empty hash is the first page.
    pub fn from_hash(hash: &str) -> Route {
        let slug = hash.trim_start_matches('#');
        Route::ALL.into_iter().find(|r| r.slug() == slug).unwrap_or(Route::Embed)
    }
}

/// The current route as a signal that follows the URL's hash.
pub fn current_route() -> ReadSignal<Route> {
    let read = || Route::from_hash(&web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default());
    let (route, set_route) = signal(read());
    let on_hash = Closure::<dyn FnMut()>::new(move || set_route.set(read()));
    if let Some(w) = web_sys::window() {
        let _ = w.add_event_listener_with_callback("hashchange", on_hash.as_ref().unchecked_ref());
    }
    on_hash.forget();
    route
}

/// A query parameter of the page's URL (`?backend=cpu`, `?model=world-judge`).
pub fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
}

/// `http://host:port` of the page.
pub fn page_origin() -> String {
    web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
}
