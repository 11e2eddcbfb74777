//! The page's side of the worker: starting it, sending typed messages (with
//! the user's files beside them), and turning replies into signal updates.

use std::cell::{Cell, RefCell};

use cliplens::hub::{DEFAULT_HUB, HubModel};
use cliplens::invert::InvertSettings;
use cliplens::invert::output::InversionRecord;
use cliplens::protocol::{BackendInfo, FromWorker, ItemResult, JobId, ModelInfo, Progress, ToWorker};
use js_sys::{Array, Object, Reflect};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{File, MessageEvent, Worker};

/// One image the user added. The `File` itself stays in `FILES` (it is a JS
/// handle, not data the UI can hold); bytes are read only by the worker.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRow {
    pub id: usize,
    pub name: String,
    /// `data:` URL of the model's-eye preview, once embedded.
    pub thumbnail: Option<String>,
    pub embed: Option<Vec<f32>>,
    pub error: Option<String>,
    /// Its job was cancelled before it was embedded; "Resume" embeds it.
    pub cancelled: bool,
}

/// What a job does: decides how its failure is shown and what "Clear images" cancels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    LoadModel,
    EmbedTexts,
    EmbedImages,
    Invert,
}

/// The inversion in progress (or the last one), as the studio shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveInversion {
    pub job: JobId,
    pub steps: usize,
    /// Similarity of each step's augmented views.
    pub curve: Vec<f32>,
    pub resolution: usize,
    /// `data:` URL of the latest preview.
    pub preview: Option<String>,
    pub paused: bool,
    /// The worker holds the job (it answers a pause between steps).
    pub held: bool,
    /// Still running (not finished, cancelled or failed).
    pub running: bool,
    pub started_ms: f64,
    /// Time spent paused, left out of speed and ETA.
    pub paused_ms: f64,
    pub paused_since: Option<f64>,
    /// How it ended, when it did: a message for the status line.
    pub outcome: Option<String>,
}

/// A finished inversion kept in this browser (its PNG in Cache Storage).
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryItem {
    pub id: String,
    pub record: InversionRecord,
    /// A `blob:` URL of the PNG, for showing and downloading.
    pub url: String,
}

/// What is running now, for the progress bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    pub job: JobId,
    pub kind: JobKind,
    /// The job as the progress bar names it.
    pub what: String,
    pub progress: Option<Progress>,
    pub started_ms: f64,
    /// When the current stage began: ETA and speed are per stage.
    pub stage_started_ms: f64,
}

/// The app's shared state: signals only (cheap to copy into closures).
#[derive(Clone, Copy)]
pub struct AppState {
    pub backend: RwSignal<Option<BackendInfo>>,
    pub model: RwSignal<Option<ModelInfo>>,
    /// The model being loaded (an id, or "picked files").
    pub model_choice: RwSignal<String>,
    pub model_error: RwSignal<Option<String>>,
    pub images: RwSignal<Vec<ImageRow>>,
    pub texts: RwSignal<Vec<ItemResult>>,
    pub running: RwSignal<Vec<Running>>,
    /// A job-level failure to show (not a per-item one).
    pub notice: RwSignal<Option<String>>,
    /// Hub models fetched in this browser before (for the model list).
    pub hub_models: RwSignal<Vec<String>>,
    /// The choice of the model now loaded: the list returns to it when
    /// another choice fails to load.
    loaded_choice: RwSignal<String>,
    pub inversion: RwSignal<Option<LiveInversion>>,
    /// Finished inversions, newest first.
    pub gallery: RwSignal<Vec<GalleryItem>>,
}

/// Restarts after crashes before the page gives up (a crash loop helps no one).
const MAX_RESTARTS: u32 = 2;
/// The model choice while picked files are loaded.
const PICKED_FILES: &str = "picked files";

/// How the model list names a Hub model: `hub:owner/name`.
pub const HUB_CHOICE: &str = "hub:";

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    static NEXT_JOB: Cell<JobId> = const { Cell::new(1) };
    /// Files by `ImageRow::id`.
    pub static FILES: RefCell<Vec<File>> = const { RefCell::new(Vec::new()) };
    /// Messages sent before the worker was ready.
    static WAITING: RefCell<Vec<(ToWorker, Vec<File>)>> = const { RefCell::new(Vec::new()) };
    static READY: Cell<bool> = const { Cell::new(false) };
    /// Why the worker was restarted (it then runs on the CPU).
    static RESTART_REASON: RefCell<Option<String>> = const { RefCell::new(None) };
    static RESTARTS: Cell<u32> = const { Cell::new(0) };
    /// Which image row each position of an image job's file list is.
    static IMAGE_JOBS: RefCell<Vec<(JobId, Vec<usize>)>> = const { RefCell::new(Vec::new()) };
    /// Image results waiting for the next table update: (row id, result, preview URL).
    static ROW_UPDATES: RefCell<Vec<(usize, ItemResult, Option<String>)>> = const { RefCell::new(Vec::new()) };
}

impl AppState {
    pub fn new() -> Self {
        AppState {
            backend: RwSignal::new(None),
            model: RwSignal::new(None),
            model_choice: RwSignal::new(String::new()),
            model_error: RwSignal::new(None),
            images: RwSignal::new(Vec::new()),
            texts: RwSignal::new(Vec::new()),
            running: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            hub_models: RwSignal::new(crate::files::remembered_hub_models()),
            loaded_choice: RwSignal::new(String::new()),
            inversion: RwSignal::new(None),
            gallery: RwSignal::new(Vec::new()),
        }
    }

    /// Starts the worker; it announces itself, then gets `Init`.
    pub fn start_worker(self) {
        let options = web_sys::WorkerOptions::new();
        options.set_name("cliplens-compute");
        let worker = match Worker::new_with_options("./worker_loader.js", &options) {
            Ok(w) => w,
            Err(e) => {
                self.notice.set(Some(format!("the compute worker could not start: {e:?}")));
                return;
            }
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match serde_wasm_bindgen::from_value::<FromWorker>(event.data()) {
                Ok(message) => self.receive(message),
                Err(e) => web_sys::console::error_1(&format!("page: unreadable worker message: {e}").into()),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
            event.prevent_default();
            self.restart_after_crash(event.message());
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        WORKER.set(Some(worker));
    }

    /// The worker died (a lost GPU device makes burn panic; so would a bug):
    /// start a new one on the CPU, reload the model, and redo what was not
    /// finished (loading the model re-embeds every image and prompt).
    fn restart_after_crash(self, message: String) {
        if let Some(worker) = WORKER.take() {
            worker.terminate();
        }
        READY.set(false);
        WAITING.with_borrow_mut(Vec::clear);
        IMAGE_JOBS.with_borrow_mut(Vec::clear);
        self.running.set(Vec::new());
        self.end_inversion(Some(format!("stopped: the compute worker stopped ({message})")));
        let restarts = RESTARTS.get() + 1;
        RESTARTS.set(restarts);
        if restarts > MAX_RESTARTS {
            self.notice.set(Some(format!("the compute worker stopped again ({message}); reload the page to try again")));
            return;
        }
        let reason = format!("the compute worker stopped ({message}) and was restarted on the CPU");
        RESTART_REASON.set(Some(reason.clone()));
        self.notice.set(Some(format!("{reason}; the model is reloaded and the embeddings redone.")));
        self.backend.set(None);
        self.start_worker();
        let choice = self.model_choice.get_untracked();
        if choice == PICKED_FILES {
            self.model_error.set(Some("the picked model's files went with the stopped worker: pick the folder again".into()));
        } else {
            self.load_choice(&choice);
        }
    }

    /// Sends `message` now, or once the worker is ready.
    fn send(self, message: ToWorker, files: Vec<File>) {
        if !READY.get() && !matches!(message, ToWorker::Init { .. }) {
            WAITING.with_borrow_mut(|w| w.push((message, files)));
            return;
        }
        let envelope = Object::new();
        let msg = match serde_wasm_bindgen::to_value(&message) {
            Ok(v) => v,
            Err(e) => {
                self.notice.set(Some(format!("cannot send a message to the worker: {e}")));
                return;
            }
        };
        let list = Array::new();
        for f in files {
            list.push(&f);
        }
        let _ = Reflect::set(&envelope, &"msg".into(), &msg);
        let _ = Reflect::set(&envelope, &"files".into(), &list);
        WORKER.with_borrow(|w| {
            if let Some(w) = w {
                let _ = w.post_message(&envelope);
            }
        });
    }

    fn new_job(self, kind: JobKind, what: &str) -> JobId {
        let job = NEXT_JOB.get();
        NEXT_JOB.set(job + 1);
        let started_ms = js_sys::Date::now();
        self.running.update(|r| r.push(Running { job, kind, what: what.into(), progress: None, started_ms, stage_started_ms: started_ms }));
        job
    }

    pub fn cancel(self, job: JobId) {
        self.send(ToWorker::Cancel { job }, Vec::new());
    }

    pub fn load_bundled(self, id: &str) {
        self.model_choice.set(id.to_string());
        self.model_error.set(None);
        let job = self.new_job(JobKind::LoadModel, &format!("loading {id}"));
        self.send(ToWorker::LoadBundled { job, id: id.to_string() }, Vec::new());
    }

    /// Fetches a model from the Hugging Face Hub (or the mirror named by `?hub=`).
    pub fn load_hub(self, text: &str) {
        let model = match HubModel::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.model_error.set(Some(e));
                return;
            }
        };
        let id = model.label();
        self.model_choice.set(format!("{HUB_CHOICE}{id}"));
        self.model_error.set(None);
        let hub = crate::shell::query_param("hub").unwrap_or_else(|| DEFAULT_HUB.to_string());
        let job = self.new_job(JobKind::LoadModel, &format!("loading {id}"));
        self.send(ToWorker::LoadHub { job, id, hub }, Vec::new());
    }

    /// Loads a choice of the model list: a site model's id, or a Hub model.
    pub fn load_choice(self, choice: &str) {
        match choice.strip_prefix(HUB_CHOICE) {
            Some(id) => self.load_hub(id),
            None => self.load_bundled(choice),
        }
    }

    pub fn load_files(self, files: Vec<(String, File)>) {
        self.model_choice.set(PICKED_FILES.into());
        self.model_error.set(None);
        let job = self.new_job(JobKind::LoadModel, "loading the picked model");
        let (names, files) = files.into_iter().unzip();
        self.send(ToWorker::LoadFiles { job, names }, files);
    }

    /// Starts an inversion with the loaded model (the target images travel as files).
    pub fn start_inversion(self, prompt: String, target_images: Vec<(String, File)>, settings: InvertSettings) {
        if let Some(live) = self.inversion.get_untracked().filter(|l| l.running) {
            self.cancel(live.job);
        }
        let job = self.new_job(JobKind::Invert, "inverting");
        let now = js_sys::Date::now();
        self.inversion.set(Some(LiveInversion {
            job,
            steps: settings.steps,
            curve: Vec::new(),
            resolution: 0,
            preview: None,
            paused: false,
            held: false,
            running: true,
            started_ms: now,
            paused_ms: 0.0,
            paused_since: None,
            outcome: None,
        }));
        let (names, files) = target_images.into_iter().unzip();
        self.send(ToWorker::Invert { job, prompt, target_images: names, settings }, files);
    }

    /// Pauses the running inversion, or lets it go on.
    pub fn toggle_pause(self) {
        let Some(live) = self.inversion.get_untracked().filter(|l| l.running) else { return };
        let now = js_sys::Date::now();
        if live.paused {
            self.send(ToWorker::Resume { job: live.job }, Vec::new());
        } else {
            self.send(ToWorker::Pause { job: live.job }, Vec::new());
        }
        self.inversion.update(|l| {
            if let Some(l) = l {
                if let Some(since) = l.paused_since.take() {
                    l.paused_ms += now - since;
                } else {
                    l.paused_since = Some(now);
                }
                l.paused = !l.paused;
            }
        });
    }

    fn end_inversion(self, outcome: Option<String>) {
        self.inversion.update(|l| {
            if let Some(l) = l.as_mut().filter(|l| l.running) {
                l.running = false;
                l.paused = false;
                l.held = false;
                if outcome.is_some() {
                    l.outcome = outcome;
                }
            }
        });
    }

    pub fn embed_texts(self, texts: Vec<String>) {
        let job = self.new_job(JobKind::EmbedTexts, "embedding prompts");
        self.send(ToWorker::EmbedTexts { job, texts }, Vec::new());
    }

    /// Adds images to the table and queues them for embedding.
    pub fn add_images(self, files: Vec<(String, File)>) {
        if files.is_empty() {
            return;
        }
        let first = FILES.with_borrow(|f| f.len());
        let ids: Vec<usize> = (first..first + files.len()).collect();
        self.images.update(|rows| {
            rows.extend(files.iter().zip(&ids).map(|((name, _), &id)| ImageRow {
                id,
                name: name.clone(),
                thumbnail: None,
                embed: None,
                error: None,
                cancelled: false,
            }))
        });
        FILES.with_borrow_mut(|f| f.extend(files.into_iter().map(|(_, file)| file)));
        self.embed_rows(ids);
    }

    /// (Re-)embeds the given rows with the current model.
    pub fn embed_rows(self, ids: Vec<usize>) {
        if ids.is_empty() {
            return;
        }
        self.images.update(|rows| {
            for &id in &ids {
                if let Some(row) = rows.get_mut(id) {
                    row.cancelled = false;
                }
            }
        });
        let count = ids.len();
        let job = self.new_job(JobKind::EmbedImages, &format!("embedding {count} image{}", if count == 1 { "" } else { "s" }));
        let (names, files): (Vec<String>, Vec<File>) = FILES.with_borrow(|all| {
            let rows = self.images.get_untracked();
            ids.iter().map(|&id| (rows[id].name.clone(), all[id].clone())).unzip()
        });
        IMAGE_JOBS.with_borrow_mut(|j| j.push((job, ids)));
        self.send(ToWorker::EmbedImages { job, names }, files);
    }

    pub fn clear_images(self) {
        for r in self.running.get_untracked() {
            if r.kind == JobKind::EmbedImages {
                self.cancel(r.job);
            }
        }
        self.images.set(Vec::new());
        FILES.with_borrow_mut(Vec::clear);
        // Late results of the cancelled jobs must not land on new rows with the same ids.
        IMAGE_JOBS.with_borrow_mut(Vec::clear);
        ROW_UPDATES.with_borrow_mut(Vec::clear);
    }

    /// Applies queued image results together, at most every 100 ms: one table
    /// update per batch instead of one per image keeps the page responsive.
    fn flush_rows_soon(self) {
        let flush = Closure::once_into_js(move || {
            let updates = ROW_UPDATES.with_borrow_mut(std::mem::take);
            self.images.update(|rows| {
                for (id, result, url) in updates {
                    if let Some(row) = rows.get_mut(id) {
                        row.embed = result.embed;
                        row.error = result.error;
                        row.cancelled = false;
                        if url.is_some() {
                            row.thumbnail = url;
                        }
                    }
                }
            });
        });
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(flush.unchecked_ref(), 100);
        }
    }

    /// Rows of a cancelled image job that got no result stay visible as
    /// cancelled (not as forever "…"), ready for [`AppState::resume`].
    fn mark_cancelled(self, job: JobId) {
        let Some(ids) = IMAGE_JOBS.with_borrow(|j| j.iter().find(|(x, _)| *x == job).map(|(_, ids)| ids.clone())) else {
            return;
        };
        self.images.update(|rows| {
            for id in ids {
                if let Some(row) = rows.get_mut(id).filter(|r| r.embed.is_none() && r.error.is_none()) {
                    row.cancelled = true;
                }
            }
        });
    }

    /// Embeds the rows a cancel left out.
    pub fn resume(self) {
        let ids: Vec<usize> = self.images.get_untracked().iter().filter(|r| r.cancelled).map(|r| r.id).collect();
        self.embed_rows(ids);
    }

    fn finish(self, job: JobId) {
        self.running.update(|r| r.retain(|x| x.job != job));
        IMAGE_JOBS.with_borrow_mut(|j| j.retain(|(id, _)| *id != job));
    }

    fn receive(self, message: FromWorker) {
        match message {
            FromWorker::Started => {
                // After a crash the GPU is suspect (a lost device is the usual cause): use the CPU.
                let prefer_gpu =
                    !crate::shell::query_param("backend").is_some_and(|b| b == "cpu") && RESTART_REASON.with_borrow(Option::is_none);
                self.send(ToWorker::Init { prefer_gpu }, Vec::new());
            }
            FromWorker::Ready { mut backend } => {
                if let Some(reason) = RESTART_REASON.with_borrow(Clone::clone) {
                    backend.fallback_reason = Some(reason);
                }
                self.backend.set(Some(backend));
                READY.set(true);
                for (m, f) in WAITING.with_borrow_mut(std::mem::take) {
                    self.send(m, f);
                }
            }
            FromWorker::Progress { job, progress } => self.running.update(|r| {
                if let Some(x) = r.iter_mut().find(|x| x.job == job) {
                    if x.progress.as_ref().is_none_or(|p| p.stage != progress.stage) {
                        x.stage_started_ms = js_sys::Date::now();
                    }
                    x.progress = Some(progress);
                }
            }),
            FromWorker::ModelLoaded { model, .. } => {
                if let Some(id) = self.model_choice.get_untracked().strip_prefix(HUB_CHOICE) {
                    crate::files::remember_hub_model(id);
                    self.hub_models.set(crate::files::remembered_hub_models());
                }
                self.loaded_choice.set(self.model_choice.get_untracked());
                self.model.set(Some(model));
                // Every embedding so far belongs to the previous model.
                self.images.update(|rows| rows.iter_mut().for_each(|r| r.embed = None));
                let ids: Vec<usize> = self.images.get_untracked().iter().filter(|r| r.error.is_none()).map(|r| r.id).collect();
                let texts: Vec<String> = self.texts.get_untracked().into_iter().map(|t| t.name).collect();
                self.texts.set(Vec::new());
                if !texts.is_empty() {
                    self.embed_texts(texts);
                }
                self.embed_rows(ids);
            }
            FromWorker::TextsEmbedded { texts, .. } => self.texts.set(texts),
            FromWorker::ImageEmbedded { job, index, result, thumbnail } => {
                let Some(id) = IMAGE_JOBS.with_borrow(|j| j.iter().find(|(x, _)| *x == job).map(|(_, ids)| ids[index]))
                else {
                    return;
                };
                let url = thumbnail.and_then(|t| crate::files::thumbnail_url(&t));
                let first = ROW_UPDATES.with_borrow_mut(|u| {
                    u.push((id, result, url));
                    u.len() == 1
                });
                if first {
                    self.flush_rows_soon();
                }
            }
            FromWorker::InvertStep { job, step, steps, similarity, resolution } => self.inversion.update(|l| {
                if let Some(l) = l.as_mut().filter(|l| l.job == job) {
                    l.curve.truncate(step.saturating_sub(1));
                    l.curve.push(similarity);
                    l.steps = steps;
                    l.resolution = resolution;
                }
            }),
            FromWorker::InvertHeld { job, paused, .. } => self.inversion.update(|l| {
                if let Some(l) = l.as_mut().filter(|l| l.job == job) {
                    l.held = paused;
                }
            }),
            FromWorker::InvertStopped { job, steps_done } => {
                if self.inversion.get_untracked().is_some_and(|l| l.job == job) {
                    self.end_inversion(Some(if steps_done == 0 {
                        "cancelled before the first step".into()
                    } else {
                        "cancelled; the image so far is on its way to the gallery".into()
                    }));
                }
            }
            FromWorker::InvertPreview { job, image, .. } => {
                let url = crate::files::thumbnail_url(&image);
                self.inversion.update(|l| {
                    if let Some(l) = l.as_mut().filter(|l| l.job == job) {
                        l.preview = url;
                    }
                });
            }
            FromWorker::Inverted { job, png, image, record, warnings } => {
                let url = crate::files::thumbnail_url(&image);
                let outcome = if record.stopped {
                    format!("cancelled after {} steps; the image so far is in the gallery", record.steps_done)
                } else {
                    format!("done: similarity {:.4} after {} steps in {:.1} s", record.similarity, record.steps_done, record.seconds)
                };
                let outcome = warnings.into_iter().fold(outcome, |text, w| format!("{text}; warning: {w}"));
                self.inversion.update(|l| {
                    if let Some(l) = l.as_mut().filter(|l| l.job == job) {
                        l.preview = url;
                        l.outcome = Some(outcome);
                    }
                });
                crate::gallery::add(self, png, record);
            }
            FromWorker::Finished { job, cancelled } => {
                if cancelled {
                    self.mark_cancelled(job);
                }
                if self.inversion.get_untracked().is_some_and(|l| l.job == job) {
                    self.end_inversion(None);
                }
                self.finish(job)
            }
            FromWorker::Failed { job, message } => {
                if self.inversion.get_untracked().is_some_and(|l| l.job == job) {
                    self.end_inversion(None);
                    self.inversion.update(|l| {
                        if let Some(l) = l {
                            l.outcome = Some(format!("could not invert: {message}"));
                        }
                    });
                    self.finish(job);
                    return;
                }
                let was_model = self.running.get_untracked().iter().any(|r| r.job == job && r.kind == JobKind::LoadModel);
                if was_model {
                    self.model_error.set(Some(message));
                    self.model_choice.set(self.loaded_choice.get_untracked());
                } else {
                    self.notice.set(Some(message));
                }
                self.finish(job);
            }
        }
    }
}
