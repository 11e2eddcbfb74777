//! Finished inversions kept in this browser: each PNG (which carries its own
//! model, target and settings in its metadata) in Cache Storage, their order
//! in `localStorage`. Nothing leaves the page.

use cliplens::invert::output::{InversionRecord, record_from_png};
use js_sys::{Array, Uint8Array};
use leptos::prelude::*;

use crate::app::AppState;
use crate::shared::cache::Store;

const GALLERY_CACHE: &str = "cliplens-gallery-v1";
/// `localStorage` key of the gallery's ids, newest first.
const INDEX_KEY: &str = "cliplens-gallery";
/// Oldest results beyond this many are dropped.
const LIMIT: usize = 60;

/// A finished inversion kept in this browser (its PNG in Cache Storage).
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryItem {
    pub id: String,
    pub record: InversionRecord,
    /// A `blob:` URL of the PNG, for showing and downloading.
    pub url: String,
}

#[derive(Clone, Copy)]
pub struct Gallery {
    /// Newest first.
    pub items: RwSignal<Vec<GalleryItem>>,
}

impl Gallery {
    pub fn new() -> Self {
        Gallery { items: RwSignal::new(Vec::new()) }
    }
}

fn cache_key(id: &str) -> String {
    format!("gallery/{id}.png")
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn read_index() -> Vec<String> {
    local_storage()
        .and_then(|s| s.get_item(INDEX_KEY).ok().flatten())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn write_index(ids: &[String]) {
    if let Some(s) = local_storage() {
        let _ = s.set_item(INDEX_KEY, &serde_json::to_string(ids).unwrap_or_default());
    }
}

/// A `blob:` URL for PNG bytes (made on the page; the bytes stay here).
pub fn png_url(png: &[u8]) -> Option<String> {
    let array = Uint8Array::from(png);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&Array::of1(&array), &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// Keeps a new result: shown at once, stored in the background.
pub fn add(state: AppState, png: Vec<u8>, record: InversionRecord) {
    // Time first (the order), then a random part: two results in one
    // millisecond, or from two tabs, must not share a cache entry.
    let id = format!("{}-{:06}", js_sys::Date::now() as u64, (js_sys::Math::random() * 1e6) as u32);
    let Some(url) = png_url(&png) else {
        state.notice.set(Some("the browser could not show the result image".into()));
        return;
    };
    let gallery = state.gallery;
    let mut ids = read_index();
    ids.retain(|x| *x != id);
    ids.insert(0, id.clone());
    let dropped: Vec<String> = ids.split_off(ids.len().min(LIMIT));
    write_index(&ids);
    gallery.items.update(|g| {
        g.insert(0, GalleryItem { id: id.clone(), record, url });
        g.retain(|item| {
            let keep = !dropped.contains(&item.id);
            if !keep {
                let _ = web_sys::Url::revoke_object_url(&item.url);
            }
            keep
        });
    });
    leptos::task::spawn_local(async move {
        let Some(cache) = Store::open(GALLERY_CACHE).await else { return };
        cache.put(&cache_key(&id), &png).await;
        for old in dropped {
            cache.delete(&cache_key(&old)).await;
        }
    });
}

/// Reads the stored gallery (at start-up).
pub fn load(state: AppState) {
    leptos::task::spawn_local(async move {
        let Some(cache) = Store::open(GALLERY_CACHE).await else { return };
        let mut items = Vec::new();
        let mut unreadable = Vec::new();
        for id in read_index() {
            let Some(bytes) = cache.get(&cache_key(&id)).await else {
                unreadable.push(id);
                continue;
            };
            let (Ok(record), Some(url)) = (record_from_png(&bytes, &id), png_url(&bytes)) else {
                unreadable.push(id);
                continue;
            };
            items.push(GalleryItem { id, record, url });
        }
        // Read again: a result added while this loaded is in the index now
        // (its PNG perhaps not yet in the cache) and must stay.
        let mut ids = read_index();
        ids.retain(|id| !unreadable.contains(id));
        write_index(&ids);
        // Results that arrived while loading come first.
        state.gallery.items.update(|g| {
            let fresh: Vec<String> = g.iter().map(|i| i.id.clone()).collect();
            g.extend(items.into_iter().filter(|i| !fresh.contains(&i.id)));
        });
    });
}

pub fn remove(state: AppState, id: &str) {
    let mut ids = read_index();
    ids.retain(|x| x != id);
    write_index(&ids);
    state.gallery.items.update(|g| {
        if let Some(item) = g.iter().find(|i| i.id == id) {
            let _ = web_sys::Url::revoke_object_url(&item.url);
        }
        g.retain(|i| i.id != id);
    });
    let key = cache_key(id);
    leptos::task::spawn_local(async move {
        if let Some(cache) = Store::open(GALLERY_CACHE).await {
            cache.delete(&key).await;
        }
    });
}

/// Saves the PNG through the browser's download.
pub fn download(item: &GalleryItem) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(a) = document.create_element("a") else { return };
    let a: web_sys::HtmlAnchorElement = wasm_bindgen::JsCast::unchecked_into(a);
    a.set_href(&item.url);
    a.set_download(&cliplens::invert::output::file_name(&item.record));
    a.click();
}
