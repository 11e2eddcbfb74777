//! The worker's message loop: jobs run one at a time in arrival order;
//! `Cancel` is handled at once (the running job sees it between items).

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;

use burn::tensor::{Device, Tensor};
use cliplens::clip::Clip;
use cliplens::protocol::{BackendInfo, FromWorker, JobId, ToWorker};
use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{DedicatedWorkerGlobalScope, File, MessageEvent};

use crate::{invert, jobs};

/// Everything the worker keeps between messages.
#[derive(Default)]
pub struct State {
    pub device: Option<Device>,
    pub clip: Option<Rc<Clip>>,
    /// `"webgpu"` or `"cpu"`, once the device is chosen.
    pub backend_kind: String,
    queue: VecDeque<(ToWorker, Vec<File>)>,
    running: bool,
    cancelled: HashSet<JobId>,
    paused: HashSet<JobId>,
}

thread_local! {
    pub static STATE: RefCell<State> = RefCell::new(State::default());
}

pub fn post(message: &FromWorker) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    match serde_wasm_bindgen::to_value(message) {
        Ok(value) => {
            let _ = scope.post_message(&value);
        }
        Err(e) => web_sys::console::error_1(&format!("cannot send {message:?}: {e}").into()),
    }
}

pub fn is_cancelled(job: JobId) -> bool {
    STATE.with_borrow(|s| s.cancelled.contains(&job))
}

pub fn is_paused(job: JobId) -> bool {
    STATE.with_borrow(|s| s.paused.contains(&job))
}

pub fn start() {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| receive(event.data()));
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&FromWorker::Started);
}

/// A message is `{ msg, files }`: the serde message and the files it names.
fn receive(data: JsValue) {
    let msg = Reflect::get(&data, &"msg".into()).unwrap_or(JsValue::UNDEFINED);
    let message: ToWorker = match serde_wasm_bindgen::from_value(msg) {
        Ok(m) => m,
        Err(e) => {
            web_sys::console::error_1(&format!("worker: unreadable message: {e}").into());
            return;
        }
    };
    let files: Vec<File> = Reflect::get(&data, &"files".into())
        .ok()
        .filter(|f| Array::is_array(f))
        .map(|f| Array::from(&f).iter().filter_map(|v| v.dyn_into::<File>().ok()).collect())
        .unwrap_or_default();
    match message {
        ToWorker::Init { prefer_gpu } => spawn_local(init(prefer_gpu)),
        ToWorker::Cancel { job } => {
            let dropped = STATE.with_borrow_mut(|s| {
                s.cancelled.insert(job);
                let before = s.queue.len();
                s.queue.retain(|(m, _)| job_of(m) != Some(job));
                before != s.queue.len()
            });
            if dropped {
                post(&FromWorker::Finished { job, cancelled: true });
            }
        }
        ToWorker::Pause { job } => STATE.with_borrow_mut(|s| {
            s.paused.insert(job);
        }),
        ToWorker::Resume { job } => STATE.with_borrow_mut(|s| {
            s.paused.remove(&job);
        }),
        other => {
            let start_runner = STATE.with_borrow_mut(|s| {
                s.queue.push_back((other, files));
                !std::mem::replace(&mut s.running, true)
            });
            if start_runner {
                spawn_local(run_queue());
            }
        }
    }
}

fn job_of(message: &ToWorker) -> Option<JobId> {
    match message {
        ToWorker::Init { .. } => None,
        ToWorker::LoadBundled { job, .. }
        | ToWorker::LoadHub { job, .. }
        | ToWorker::LoadFiles { job, .. }
        | ToWorker::EmbedTexts { job, .. }
        | ToWorker::EmbedImages { job, .. }
        | ToWorker::Invert { job, .. }
        | ToWorker::Pause { job }
        | ToWorker::Resume { job }
        | ToWorker::Cancel { job } => Some(*job),
    }
}

async fn run_queue() {
    loop {
        let Some((message, files)) = STATE.with_borrow_mut(|s| {
            let next = s.queue.pop_front();
            if next.is_none() {
                s.running = false;
            }
            next
        }) else {
            return;
        };
        let job = job_of(&message).unwrap_or(0);
        let outcome = match message {
            ToWorker::LoadBundled { job, id } => jobs::load_bundled(job, &id).await,
            ToWorker::LoadHub { job, id, hub } => jobs::load_hub(job, &id, &hub).await,
            ToWorker::LoadFiles { job, names } => jobs::load_files(job, &names, &files).await,
            ToWorker::EmbedTexts { job, texts } => jobs::embed_texts(job, &texts).await,
            ToWorker::EmbedImages { job, names } => jobs::embed_images(job, &names, &files).await,
            ToWorker::Invert { job, prompt, target_images, settings } => {
                invert::invert(job, &prompt, &target_images, &files, settings).await
            }
            ToWorker::Init { .. } | ToWorker::Cancel { .. } | ToWorker::Pause { .. } | ToWorker::Resume { .. } => Ok(()),
        };
        match outcome {
            Ok(()) => post(&FromWorker::Finished { job, cancelled: is_cancelled(job) }),
            Err(message) => post(&FromWorker::Failed { job, message }),
        }
        STATE.with_borrow_mut(|s| {
            s.cancelled.remove(&job);
            s.paused.remove(&job);
        });
    }
}

async fn init(prefer_gpu: bool) {
    let (device, backend) = choose_device(prefer_gpu).await;
    STATE.with_borrow_mut(|s| {
        s.device = Some(device);
        s.backend_kind = backend.kind.clone();
    });
    post(&FromWorker::Ready { backend });
}

fn cpu(reason: Option<String>) -> (Device, BackendInfo) {
    let info = BackendInfo { kind: "cpu".into(), name: "CPU (burn Flex, WebAssembly)".into(), fallback_reason: reason };
    (Device::flex(), info)
}

/// WebGPU when the browser offers an adapter that computes correctly, else
/// the CPU, with the reason.
async fn choose_device(prefer_gpu: bool) -> (Device, BackendInfo) {
    if !prefer_gpu {
        return cpu(None);
    }
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return cpu(Some("this browser offers no WebGPU to workers".into()));
    }
    // Ask the browser for an adapter first: burn would fail less clearly.
    let request = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call0(&gpu).ok())
        .and_then(|p| p.dyn_into::<js_sys::Promise>().ok());
    let adapter = match request {
        Some(p) => JsFuture::from(p).await.unwrap_or(JsValue::NULL),
        None => JsValue::NULL,
    };
    if adapter.is_null() || adapter.is_undefined() {
        return cpu(Some("WebGPU is present but no GPU adapter is available".into()));
    }
    let name = adapter_name(&adapter);
    let device = match Device::wgpu_options().init_async().await {
        Ok(d) => d,
        Err(e) => return cpu(Some(format!("WebGPU could not start: {e:?}"))),
    };
    // A wrong-but-plausible GPU is worse than a slow CPU: check one sum.
    let probe = Tensor::<1>::from_floats([1.0, 2.0, 3.5], &device).sum();
    match cliplens::clip::read_vec(probe).await {
        Ok(v) if v.first() == Some(&6.5) => {
            (device, BackendInfo { kind: "webgpu".into(), name, fallback_reason: None })
        }
        Ok(v) => cpu(Some(format!("the GPU computed 1 + 2 + 3.5 = {v:?}"))),
        Err(e) => cpu(Some(format!("the GPU failed a test read: {}", e.message))),
    }
}

/// "vendor architecture description" from `GPUAdapter.info`, as far as the browser tells.
fn adapter_name(adapter: &JsValue) -> String {
    let info = Reflect::get(adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| Reflect::get(&info, &(*k).into()).ok()?.as_string())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() { "WebGPU adapter".into() } else { parts.join(" ") }
}
