//! Downloads, in a window or a worker: whole files with byte progress, or a
//! byte range streamed chunk by chunk, with cancellation and typed failures;
//! plus timers that let the event loop run.

use std::cell::RefCell;
use std::fmt;

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Request, RequestInit, Response};

/// Why a download gave nothing (more).
#[derive(Clone, Debug, PartialEq)]
pub enum FetchError {
    /// The caller asked it to stop.
    Cancelled,
    /// The server answered with an error status.
    Http { status: u16, text: String },
    /// No answer, or the connection broke part-way (after `received` bytes).
    Network { message: String, received: u64 },
    /// The caller's chunk handler refused the bytes.
    Rejected(String),
}

impl FetchError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::Http { status: 404, .. })
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Cancelled => write!(f, "cancelled"),
            FetchError::Http { status, text } => write!(f, "HTTP {status} {text}"),
            FetchError::Network { message, received: 0 } => write!(f, "cannot be fetched: {message}"),
            FetchError::Network { message, received } => write!(f, "the download broke off after {received} bytes: {message}"),
            FetchError::Rejected(message) => write!(f, "{message}"),
        }
    }
}

/// What a response said about itself.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    pub status: u16,
    /// `ETag`, when the server lets scripts read it.
    pub etag: Option<String>,
    /// `Content-Length` of this response (of the range, for a 206).
    pub length: Option<u64>,
}

pub fn describe(err: &JsValue) -> String {
    err.as_string()
        .or_else(|| err.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{err:?}"))
}

thread_local! {
    /// Requests made here that a redirect took to another origin: resource
    /// timing lists a request under the URL it was made to, not where it went.
    static REDIRECTED_OFFSITE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn global_origin() -> String {
    Reflect::get(&js_sys::global(), &"origin".into()).ok().and_then(|o| o.as_string()).unwrap_or_default()
}

fn is_offsite(url: &str, origin: &str) -> bool {
    !url.starts_with(&format!("{origin}/")) && !url.starts_with("blob:") && !url.starts_with("data:")
}

/// `fetch(request)` on whatever global this runs in.
async fn global_fetch(request: &Request) -> Result<Response, JsValue> {
    let global = js_sys::global();
    let fetch: Function = Reflect::get(&global, &"fetch".into())?.dyn_into()?;
    let promise: Promise = fetch.call1(&global, request)?.dyn_into()?;
    JsFuture::from(promise).await?.dyn_into()
}

/// GETs `url` (only bytes `range.0..range.1` when given) and hands each chunk
/// to `on_chunk` as it arrives; `on_chunk` returns `Ok(false)` to stop
/// (`Cancelled`) or an error to refuse the bytes (`Rejected`). A server that
/// ignores the range answers 200: the chunks then start at byte 0, which the
/// returned `status` tells.
pub async fn stream(
    url: &str,
    range: Option<(u64, u64)>,
    mut on_chunk: impl FnMut(&Fetched, &[u8]) -> Result<bool, String>,
) -> Result<Fetched, FetchError> {
    let init = RequestInit::new();
    init.set_method("GET");
    let request = Request::new_with_str_and_init(url, &init).map_err(|e| FetchError::Network { message: describe(&e), received: 0 })?;
    if let Some((start, end)) = range {
        // A plain single range is a CORS-safelisted header: no preflight.
        let _ = request.headers().set("Range", &format!("bytes={start}-{}", end.saturating_sub(1)));
    }
    let response = global_fetch(&request).await.map_err(|e| FetchError::Network { message: describe(&e), received: 0 })?;
    let origin = global_origin();
    if response.redirected() && !is_offsite(&request.url(), &origin) && is_offsite(&response.url(), &origin) {
        REDIRECTED_OFFSITE.with_borrow_mut(|r| r.push(response.url()));
    }
    if !response.ok() {
        return Err(FetchError::Http { status: response.status(), text: response.status_text() });
    }
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let info = Fetched {
        status: response.status(),
        etag: header("etag"),
        length: header("content-length").and_then(|v| v.parse().ok()),
    };
    let mut received = 0u64;
    let Some(body) = response.body() else {
        let buffer = JsFuture::from(response.array_buffer().map_err(|e| FetchError::Network { message: describe(&e), received })?)
            .await
            .map_err(|e| FetchError::Network { message: describe(&e), received })?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        return match on_chunk(&info, &bytes) {
            Ok(true) => Ok(info),
            Ok(false) => Err(FetchError::Cancelled),
            Err(e) => Err(FetchError::Rejected(e)),
        };
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut buffer = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| FetchError::Network { message: describe(&e), received })?;
        if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|e| FetchError::Network { message: describe(&e), received })?.unchecked_into();
        buffer.resize(value.length() as usize, 0);
        value.copy_to(&mut buffer);
        received += buffer.len() as u64;
        let outcome = on_chunk(&info, &buffer);
        if !matches!(outcome, Ok(true)) {
            let _ = reader.cancel();
            return Err(match outcome {
                Err(e) => FetchError::Rejected(e),
                _ => FetchError::Cancelled,
            });
        }
    }
    if let Some(length) = info.length.filter(|&l| l != received) {
        return Err(FetchError::Network { message: format!("{received} of {length} bytes arrived"), received });
    }
    Ok(info)
}

/// GETs the whole of `url`, calling `keep_going(done, total)` as bytes arrive
/// (`total` 0 while unknown); `false` stops it (`Cancelled`).
pub async fn download(url: &str, mut keep_going: impl FnMut(u64, u64) -> bool) -> Result<(Vec<u8>, Fetched), FetchError> {
    let mut bytes = Vec::new();
    let info = stream(url, None, |info, chunk| {
        if bytes.is_empty() {
            bytes.reserve(info.length.unwrap_or(0) as usize);
        }
        bytes.extend_from_slice(chunk);
        Ok(keep_going(bytes.len() as u64, info.length.unwrap_or(0).max(bytes.len() as u64)))
    })
    .await?;
    Ok((bytes, info))
}

/// Waits `ms` milliseconds without blocking the event loop.
pub async fn sleep_ms(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        if let Ok(set_timeout) = Reflect::get(&global, &"setTimeout".into()).and_then(|f| f.dyn_into::<Function>()) {
            let _ = set_timeout.call2(&global, &resolve, &JsValue::from(ms));
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Lets the event loop run (messages such as Cancel come in) before going
/// on. A message to itself rather than `setTimeout(0)`, which browsers clamp
/// to 4 ms once timers nest.
pub async fn yield_now() {
    let Ok(channel) = web_sys::MessageChannel::new() else {
        return sleep_ms(0).await;
    };
    let promise = Promise::new(&mut |resolve, _| {
        channel.port1().set_onmessage(Some(&resolve));
        let _ = channel.port2().post_message(&JsValue::NULL);
    });
    let _ = JsFuture::from(promise).await;
    channel.port1().set_onmessage(None);
}

/// The bytes of a picked file.
pub async fn file_bytes(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer()).await.map_err(|e| format!("cannot be read: {}", describe(&e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// This global's (window's or worker's) `performance`.
pub fn performance() -> Option<web_sys::Performance> {
    Reflect::get(&js_sys::global(), &"performance".into()).ok().and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
}

/// URLs this global (window or worker) fetched outside its own origin, as
/// the browser's resource timing lists them (plus requests a redirect took
/// elsewhere): what the privacy badge counts.
pub fn offsite_requests() -> Vec<String> {
    let origin = global_origin();
    let Some(performance) = performance() else {
        return Vec::new();
    };
    let mut urls: Vec<String> = performance
        .get_entries_by_type("resource")
        .iter()
        .filter_map(|e| Reflect::get(&e, &"name".into()).ok()?.as_string())
        .filter(|url| is_offsite(url, &origin))
        .collect();
    REDIRECTED_OFFSITE.with_borrow(|r| urls.extend(r.iter().cloned()));
    urls
}
