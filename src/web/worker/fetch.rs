//! Downloads with byte progress, and the browser's Cache Storage for model
//! files, so a reload (or a pulled network cable) needs no download.

use cliplens::protocol::MODEL_CACHE;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, ReadableStreamDefaultReader, Response, WorkerGlobalScope};


fn scope() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub fn describe(err: &JsValue) -> String {
    err.as_string()
        .or_else(|| err.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{err:?}"))
}

async fn open_cache() -> Option<Cache> {
    let caches = scope().caches().ok()?;
    JsFuture::from(caches.open(MODEL_CACHE)).await.ok()?.dyn_into().ok()
}

/// The cached bytes for `key`, if any.
pub async fn cached(key: &str) -> Option<Vec<u8>> {
    let cache = open_cache().await?;
    let hit = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    let response: Response = hit.dyn_into().ok()?;
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

/// Stores `bytes` under `key`. Failing to cache (quota, private mode) is not
/// an error: the model still runs, it is just downloaded again next time.
pub async fn store(key: &str, bytes: &[u8]) {
    let Some(cache) = open_cache().await else { return };
    let mut copy = bytes.to_vec();
    if let Ok(response) = Response::new_with_opt_u8_array(Some(&mut copy)) {
        let _ = JsFuture::from(cache.put_with_str(key, &response)).await;
    }
}

/// What [`download`] brought back.
pub struct Downloaded {
    pub bytes: Vec<u8>,
    /// The response's `ETag`, when the server lets scripts read it.
    pub etag: Option<String>,
}

/// Why a download stopped early because its job was cancelled.
pub const CANCELLED: &str = "cancelled";

/// GETs `url`, calling `keep_going(done, total)` as bytes arrive (`total` is
/// 0 when the server does not say); when it returns false the download stops
/// with [`CANCELLED`]. A 404 reads "HTTP 404 ...".
pub async fn download(url: &str, mut keep_going: impl FnMut(u64, u64) -> bool) -> Result<Downloaded, String> {
    let response = JsFuture::from(scope().fetch_with_str(url)).await.map_err(|e| format!("cannot be fetched: {}", describe(&e)))?;
    let response: Response = response.dyn_into().map_err(|_| "fetch returned no response".to_string())?;
    if !response.ok() {
        return Err(format!("HTTP {} {}", response.status(), response.status_text()));
    }
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let total = header("content-length").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let etag = header("etag");
    let Some(body) = response.body() else {
        let buffer = JsFuture::from(response.array_buffer().map_err(|e| describe(&e))?).await.map_err(|e| describe(&e))?;
        return Ok(Downloaded { bytes: Uint8Array::new(&buffer).to_vec(), etag });
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total as usize);
    keep_going(0, total);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| format!("download interrupted: {}", describe(&e)))?;
        if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|e| describe(&e))?.unchecked_into();
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        if !keep_going(bytes.len() as u64, total.max(bytes.len() as u64)) {
            let _ = reader.cancel();
            return Err(CANCELLED.into());
        }
    }
    Ok(Downloaded { bytes, etag })
}

/// Removes `key` from the model cache (a model that turned out unusable).
pub async fn forget(key: &str) {
    if let Some(cache) = open_cache().await {
        let _ = JsFuture::from(cache.delete_with_str(key)).await;
    }
}

/// The bytes of a picked file.
pub async fn file_bytes(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer()).await.map_err(|e| format!("cannot be read: {}", describe(&e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Lets the worker's event loop run (so a `Cancel` message is seen) before
/// the next piece of work.
pub async fn yield_now() {
    sleep_ms(0).await;
}

/// Waits `ms` milliseconds without blocking the worker's event loop.
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
