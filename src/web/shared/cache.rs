//! The browser's Cache Storage as a key-value store of bytes, in a window
//! or a worker. Failing to cache (quota, private mode) is never an error for
//! the caller's work: it only costs a download next time.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, CacheStorage, Response};

fn storage() -> Option<CacheStorage> {
    Reflect::get(&js_sys::global(), &"caches".into()).ok()?.dyn_into().ok()
}

/// One named cache (e.g. [`cliplens::protocol::MODEL_CACHE`]).
pub struct Store(Cache);

impl Store {
    pub async fn open(name: &str) -> Option<Store> {
        let cache = JsFuture::from(storage()?.open(name)).await.ok()?.dyn_into().ok()?;
        Some(Store(cache))
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let hit = JsFuture::from(self.0.match_with_str(key)).await.ok()?;
        let response: Response = hit.dyn_into().ok()?;
        let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
        Some(Uint8Array::new(&buffer).to_vec())
    }

    pub async fn contains(&self, key: &str) -> bool {
        JsFuture::from(self.0.match_with_str(key)).await.is_ok_and(|hit| hit.is_instance_of::<Response>())
    }

    /// Stores `bytes` under `key`; false when the browser refused.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> bool {
        // A view of wasm memory would move if memory grows: the Response gets a copy.
        let array = Uint8Array::from(bytes);
        let Ok(response) = Response::new_with_opt_buffer_source(Some(&array)) else { return false };
        JsFuture::from(self.0.put_with_str(key, &response)).await.is_ok()
    }

    pub async fn delete(&self, key: &str) {
        let _ = JsFuture::from(self.0.delete_with_str(key)).await;
    }
}

/// Deletes the whole named cache.
pub async fn delete_all(name: &str) -> bool {
    let Some(storage) = storage() else { return false };
    JsFuture::from(storage.delete(name)).await.ok().and_then(|v| v.as_bool()).unwrap_or(false)
}
