//! The worker's message loop: jobs run one at a time in arrival order;
//! `Cancel`, `Pause` and `Resume` are handled at once (the running job sees
//! them between items or views). Also what the page needs to recover: a
//! panic hook that says which job and items were in hand, and a watch on the
//! GPU device that says when it is lost.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use burn::tensor::{Device, Tensor};
use cliplens::clip::Clip;
use cliplens::protocol::{BackendChoice, BackendInfo, BackendKind, FromWorker, JobId, ToWorker};
use js_sys::{Array, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{DedicatedWorkerGlobalScope, File, MessageEvent};

use crate::shared::net::offsite_requests;
use crate::{audit, concepts, hub, invert, jobs};

/// Everything the worker keeps between messages.
#[derive(Default)]
pub struct State {
    pub device: Option<Device>,
    pub clip: Option<Rc<Clip>>,
    /// Names the loaded weights in caches (their sha256, or a verified
    /// source's identity for large files).
    pub model_key: Option<String>,
    /// The loaded model's own image mean (`image_mean.json` beside a site model).
    pub image_mean: Option<cliplens::concepts::ImageMean>,
    /// A second site model (id, model, weights sha256): the probe's judge.
    pub side_model: Option<(String, Rc<Clip>, String)>,
    /// The concept dictionary `Decompose` uses (made by `PrepareConcepts`).
    pub dictionary: Option<Rc<cliplens::concepts::Dictionary>>,
    pub backend: Option<BackendKind>,
    queue: VecDeque<(ToWorker, Vec<File>)>,
    running: bool,
    cancelled: HashSet<JobId>,
    paused: HashSet<JobId>,
    /// Files of image jobs, as they arrive (`EmbedImages`, then `ImageFiles`).
    image_files: HashMap<JobId, Vec<File>>,
    /// Off-site requests already reported to the page.
    reported_requests: usize,
}

thread_local! {
    pub static STATE: RefCell<State> = RefCell::new(State::default());
    /// The job being run, for the panic hook.
    static CURRENT_JOB: Cell<Option<JobId>> = const { Cell::new(None) };
    /// The current job's items in hand (image indices), for the panic hook.
    static IN_HAND: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    static DEVICE_LOST: Cell<bool> = const { Cell::new(false) };
    /// Test hook: an image name whose preparation panics (see [`test_hook_panic_on`]).
    static PANIC_ON: RefCell<Option<String>> = const { RefCell::new(None) };
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

/// File number `index` of image job `job`, once it has arrived; `None` if
/// the job was cancelled first.
pub async fn image_file(job: JobId, index: usize) -> Option<File> {
    loop {
        if is_cancelled(job) {
            return None;
        }
        if let Some(file) = STATE.with_borrow(|s| s.image_files.get(&job).and_then(|f| f.get(index).cloned())) {
            return Some(file);
        }
        crate::shared::net::sleep_ms(5).await;
    }
}

/// Marks the items of the current job now in hand (empty: none in particular).
pub fn in_hand(items: &[usize]) {
    IN_HAND.with_borrow_mut(|h| {
        h.clear();
        h.extend_from_slice(items);
    });
}

/// Test hook (the browser tests call `wasm_bindgen.test_hook_panic_on(name)`
/// in this worker): the next time an image called `name` is prepared, the
/// worker's Rust code panics, as a bug would. Inert unless called.
#[wasm_bindgen]
pub fn test_hook_panic_on(name: String) {
    PANIC_ON.set(Some(name));
}

/// The worker's WebAssembly memory in bytes: its peak, since wasm memory
/// never shrinks (read by the browser tests' memory figures).
#[wasm_bindgen]
pub fn test_hook_heap_bytes() -> f64 {
    (core::arch::wasm32::memory_size(0) * 65536) as f64
}

/// Panics if the test hook names `name` (see [`test_hook_panic_on`]).
pub fn panic_if_test_hook_names(name: &str) {
    if PANIC_ON.with_borrow(|p| p.as_deref() == Some(name)) {
        PANIC_ON.set(None);
        panic!("test hook: a deliberate panic while preparing {name}");
    }
}

pub fn start() {
    // After a panic the wasm instance is unusable: tell the page what was in
    // hand, so it can set that aside and start a new worker.
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| info.to_string());
        let items = IN_HAND.with(|h| h.try_borrow().map(|h| h.clone()).unwrap_or_default());
        // wgpu panics on a lost device before (or instead of) the lost promise.
        let device_lost = DEVICE_LOST.get() || message.to_ascii_lowercase().contains("device lost") || message.contains("Parent device is lost");
        post(&FromWorker::Crashed { job: CURRENT_JOB.get(), items, message, device_lost });
    }));
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    // Keep every resource timing entry: the privacy badge counts them.
    if let Some(performance) = scope.performance() {
        let _ = Reflect::get(&performance, &"setResourceTimingBufferSize".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .map(|f| f.call1(&performance, &JsValue::from(100_000)));
    }
    watch_gpu_device(&scope);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| receive(event.data()));
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&FromWorker::Started);
}

/// Loads `gpu_hooks.js`, which keeps the GPUDevice, and listens for its loss.
fn watch_gpu_device(scope: &DedicatedWorkerGlobalScope) {
    if let Err(e) = scope.import_scripts_1("./gpu_hooks.js") {
        web_sys::console::warn_1(&format!("worker: gpu_hooks.js did not load ({e:?}); a lost GPU shows only as a crash").into());
    }
    let on_lost = Closure::<dyn FnMut(String)>::new(|message: String| {
        DEVICE_LOST.set(true);
        post(&FromWorker::DeviceLost { message });
    });
    let _ = Reflect::set(scope, &"cliplensOnDeviceLost".into(), on_lost.as_ref());
    on_lost.forget();
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
        ToWorker::Init { backend } => spawn_local(init(backend)),
        ToWorker::Cancel { job } => {
            let dropped = STATE.with_borrow_mut(|s| {
                s.cancelled.insert(job);
                s.image_files.remove(&job);
                let before = s.queue.len();
                s.queue.retain(|(m, _)| m.job() != Some(job));
                before != s.queue.len()
            });
            if dropped {
                post(&FromWorker::Finished { job, cancelled: true });
            }
        }
        ToWorker::ImageFiles { job, .. } => STATE.with_borrow_mut(|s| {
            // Files of a job that ended (or was cancelled) are dropped.
            if let Some(list) = s.image_files.get_mut(&job) {
                list.extend(files);
            }
        }),
        ToWorker::Pause { job } => STATE.with_borrow_mut(|s| {
            s.paused.insert(job);
        }),
        ToWorker::Resume { job } => STATE.with_borrow_mut(|s| {
            s.paused.remove(&job);
        }),
        other => {
            let start_runner = STATE.with_borrow_mut(|s| {
                let files = match &other {
                    ToWorker::EmbedImages { job, .. } => {
                        s.image_files.insert(*job, files);
                        Vec::new()
                    }
                    _ => files,
                };
                s.queue.push_back((other, files));
                !std::mem::replace(&mut s.running, true)
            });
            if start_runner {
                spawn_local(run_queue());
            }
        }
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
        let job = message.job().unwrap_or(0);
        CURRENT_JOB.set(Some(job));
        in_hand(&[]);
        let outcome = match message {
            ToWorker::LoadBundled { job, id } => jobs::load_bundled(job, &id).await,
            ToWorker::ProbeHub { job, id, hub } => hub::probe(job, &id, &hub).await,
            ToWorker::LoadHub { job, id, hub } => hub::load(job, &id, &hub).await,
            ToWorker::LoadFiles { job, names } => jobs::load_files(job, &names, &files).await,
            ToWorker::EmbedTexts { job, texts } => jobs::embed_texts(job, &texts).await,
            ToWorker::EmbedImages { job, names, batch } => jobs::embed_images(job, &names, batch).await,
            ToWorker::Invert { job, prompt, target_images, settings, target_vectors } => {
                invert::invert(job, &prompt, &target_images, &files, &target_vectors, settings).await
            }
            ToWorker::FinishInversion { job, prompt, target_images, settings, target_vectors, image, curve, seconds } => {
                invert::finish_stopped(job, &prompt, &target_images, &files, &target_vectors, settings, image, curve, seconds).await
            }
            ToWorker::PrepareConcepts { job, vocabulary } => concepts::prepare(job, vocabulary).await,
            ToWorker::Decompose { job, embeds, split, sparsity } => concepts::decompose_job(job, &embeds, split, sparsity).await,
            ToWorker::Intervene { job, embeds, sparsity, remove, prompts } => {
                concepts::intervene_job(job, &embeds, sparsity, &remove, &prompts).await
            }
            ToWorker::AuditAssociations { job, spec } => audit::associations(job, spec).await,
            ToWorker::AuditFolder { job, files, embeds, settings, labels, predictions } => {
                audit::folder(job, &files, &embeds, &settings, labels, predictions).await
            }
            ToWorker::AuditProbe { job, settings, judge, safety_detector } => {
                audit::probe(job, &settings, judge.as_deref(), safety_detector.as_deref().zip(files.first())).await
            }
            ToWorker::AuditDebias { job, files, embeds, settings, labels, target, group, head } => {
                audit::debias(job, &files, &embeds, &settings, labels, &target, group.as_deref(), &head).await
            }
            ToWorker::MeasureSpeed { job, plan } => jobs::measure_speed(job, &plan).await,
            ToWorker::RunProbe { job, request } => crate::probes::run(job, request, &files).await,
            ToWorker::Init { .. } | ToWorker::ImageFiles { .. } | ToWorker::Cancel { .. } | ToWorker::Pause { .. } | ToWorker::Resume { .. } => Ok(()),
        };
        CURRENT_JOB.set(None);
        in_hand(&[]);
        report_requests();
        match outcome {
            Ok(()) => post(&FromWorker::Finished { job, cancelled: is_cancelled(job) }),
            Err(message) => post(&FromWorker::Failed { job, message }),
        }
        STATE.with_borrow_mut(|s| {
            s.cancelled.remove(&job);
            s.paused.remove(&job);
            s.image_files.remove(&job);
        });
    }
}

/// Tells the page about requests that left the origin since the last report.
pub fn report_requests() {
    let urls = offsite_requests();
    let new = STATE.with_borrow_mut(|s| {
        let new = urls.len() > s.reported_requests;
        s.reported_requests = urls.len();
        new
    });
    if new {
        post(&FromWorker::Requests { urls });
    }
}

async fn init(choice: BackendChoice) {
    let (device, backend) = choose_device(choice).await;
    STATE.with_borrow_mut(|s| {
        s.device = Some(device);
        s.backend = Some(backend.kind);
    });
    post(&FromWorker::Ready { backend });
}

fn cpu(reason: Option<String>) -> (Device, BackendInfo) {
    let info = BackendInfo { kind: BackendKind::Cpu, name: "CPU (burn Flex, WebAssembly)".into(), fallback_reason: reason };
    (Device::flex(), info)
}

/// WebGPU when the browser offers an adapter that computes correctly, else
/// the CPU, with the reason.
async fn choose_device(choice: BackendChoice) -> (Device, BackendInfo) {
    if choice == BackendChoice::Cpu {
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
        Ok(v) if v.first() == Some(&6.5) => (device, BackendInfo { kind: BackendKind::WebGpu, name, fallback_reason: None }),
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
