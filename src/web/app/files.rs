//! Browser plumbing for files: what a picker or a drop holds (whole folders
//! included), previews, downloads made on the page, and the model cache.

use cliplens::protocol::{MODEL_CACHE, Thumbnail};
use js_sys::{Array, Promise};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DataTransfer, File, FileList, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

/// Files of a picker, named by their path inside a picked folder when there is one.
pub fn from_list(list: Option<FileList>) -> Vec<(String, File)> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length())
        .filter_map(|i| list.get(i))
        .map(|f| {
            // web-sys has no binding for `webkitRelativePath` (set for folder picks).
            let path = js_sys::Reflect::get(&f, &"webkitRelativePath".into()).ok().and_then(|p| p.as_string()).unwrap_or_default();
            (if path.is_empty() { f.name() } else { path }, f)
        })
        .collect()
}

/// A file chooser as a button: a visually hidden input inside a label, so it
/// stays in the Tab order (the label shows the focus ring) and Enter opens it.
/// `on_pick` gets what was picked (folders by their inner paths); the input
/// is emptied, so picking the same files again is heard again.
#[component]
pub fn Picker(
    label: &'static str,
    id: &'static str,
    on_pick: Callback<Vec<(String, File)>>,
    /// Pick a folder (all its files) instead of files.
    #[prop(optional)]
    folder: bool,
    /// One file only.
    #[prop(optional)]
    single: bool,
    #[prop(optional)] accept: Option<&'static str>,
) -> impl IntoView {
    view! {
        <label class="button picker">{label}
            <input type="file" id=id accept=accept multiple=!single prop:webkitdirectory=folder class="visually-hidden" on:change=move |ev| {
                let input: web_sys::HtmlInputElement = event_target(&ev);
                let picked = from_list(input.files());
                input.set_value("");
                on_pick.run(picked);
            }/>
        </label>
    }
}

/// Everything dropped, walking into folders. The entries must be taken
/// before the drop handler returns; reading them may take longer.
pub fn dropped_entries(transfer: &DataTransfer) -> (Vec<FileSystemEntry>, Vec<(String, File)>) {
    let items = transfer.items();
    let entries: Vec<FileSystemEntry> =
        (0..items.length()).filter_map(|i| items.get(i)?.webkit_get_as_entry().ok().flatten()).collect();
    let loose = if entries.is_empty() { from_list(transfer.files()) } else { Vec::new() };
    (entries, loose)
}

pub async fn walk(entries: Vec<FileSystemEntry>) -> Vec<(String, File)> {
    let mut out = Vec::new();
    let mut stack = entries;
    while let Some(entry) = stack.pop() {
        if entry.is_file() {
            let file_entry: FileSystemFileEntry = entry.clone().unchecked_into();
            let promise = Promise::new(&mut |resolve, reject| file_entry.file_with_callback_and_callback(&resolve, &reject));
            if let Ok(file) = JsFuture::from(promise).await {
                let path = entry.full_path().trim_start_matches('/').to_string();
                out.push((path, file.unchecked_into()));
            }
        } else if entry.is_directory() {
            let reader = entry.unchecked_ref::<FileSystemDirectoryEntry>().create_reader();
            // Chrome hands out at most 100 entries per call: read until empty.
            loop {
                let promise = Promise::new(&mut |resolve, reject| {
                    let _ = reader.read_entries_with_callback_and_callback(&resolve, &reject);
                });
                let Ok(batch) = JsFuture::from(promise).await else { break };
                let batch = Array::from(&batch);
                if batch.length() == 0 {
                    break;
                }
                stack.extend(batch.iter().map(|e| e.unchecked_into::<FileSystemEntry>()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A `data:` URL for a preview (made on the page: nothing is sent anywhere).
pub fn thumbnail_url(t: &Thumbnail) -> Option<String> {
    let document = web_sys::window()?.document()?;
    let canvas: web_sys::HtmlCanvasElement = document.create_element("canvas").ok()?.unchecked_into();
    canvas.set_width(t.width as u32);
    canvas.set_height(t.height as u32);
    let context: web_sys::CanvasRenderingContext2d = canvas.get_context("2d").ok()??.unchecked_into();
    let rgba: Vec<u8> = t.rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let data = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba.as_slice()), t.width as u32, t.height as u32).ok()?;
    context.put_image_data(&data, 0.0, 0.0).ok()?;
    canvas.to_data_url().ok()
}

/// Saves `text` as a file through the browser's download (a local blob URL).
pub fn save(name: &str, mime: &str, text: &str) -> Result<(), JsValue> {
    let parts = Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    download_blob(name, &web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?)
}

/// Saves `bytes` (a picture) as a file, as [`save`] does text.
pub fn save_bytes(name: &str, mime: &str, bytes: &[u8]) -> Result<(), JsValue> {
    let array = js_sys::Uint8Array::from(bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    download_blob(name, &web_sys::Blob::new_with_u8_array_sequence_and_options(&Array::of1(&array), &options)?)
}

fn download_blob(name: &str, blob: &web_sys::Blob) -> Result<(), JsValue> {
    let url = web_sys::Url::create_object_url_with_blob(blob)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a")?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url)
}

/// Bytes this site stores in the browser (cache, IndexedDB...), if the browser says.
pub async fn storage_used() -> Option<f64> {
    let storage = web_sys::window()?.navigator().storage();
    let estimate = JsFuture::from(storage.estimate().ok()?).await.ok()?;
    js_sys::Reflect::get(&estimate, &"usage".into()).ok()?.as_f64()
}

/// Removes every cached model file (and any half-finished download), and
/// the image embeddings kept for resuming.
pub async fn delete_cached_models() -> bool {
    let embeddings = crate::shared::cache::delete_all(cliplens::protocol::EMBED_CACHE).await;
    crate::shared::cache::delete_all(MODEL_CACHE).await || embeddings
}

/// The models this site serves (`models/manifest.json`), for the model list.
/// `None` when it cannot be fetched (offline before the first visit).
pub async fn site_manifest() -> Option<cliplens::manifest::Manifest> {
    let (bytes, _) = crate::shared::net::download(SITE_MANIFEST, |_, _| true).await.ok()?;
    cliplens::manifest::Manifest::from_json(&bytes, SITE_MANIFEST).ok()
}

const SITE_MANIFEST: &str = "models/manifest.json";
/// `localStorage` key of the Hub models fetched in this browser (ids only).
const HUB_MODELS_KEY: &str = "cliplens-hub-models";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Hub models fetched before, newest first, so the list can offer them again.
pub fn remembered_hub_models() -> Vec<String> {
    local_storage()
        .and_then(|s| s.get_item(HUB_MODELS_KEY).ok().flatten())
        .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
        .unwrap_or_default()
}

pub fn remember_hub_model(id: &str) {
    let mut ids = remembered_hub_models();
    ids.retain(|x| x != id);
    ids.insert(0, id.to_string());
    if let Some(s) = local_storage() {
        let _ = s.set_item(HUB_MODELS_KEY, &serde_json::to_string(&ids).unwrap_or_default());
    }
}

/// Forgets the remembered Hub models (their files went with the cache).
pub fn forget_hub_models() {
    if let Some(s) = local_storage() {
        let _ = s.remove_item(HUB_MODELS_KEY);
    }
}
