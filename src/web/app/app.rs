//! The app's state (one part per concern, each a handful of signals) and how
//! the worker's messages change it: results to their rows and pages, and
//! recovery when the worker dies. A panic costs the item that caused it and
//! nothing else: the worker is replaced on the same backend, the model is
//! reloaded and only unfinished work is sent again; only a lost GPU device
//! moves the page to the CPU.

use cliplens::protocol::{BackendChoice, BackendInfo, FromWorker, JobId, ToWorker};
use leptos::prelude::*;

use crate::audit::Audit;
use crate::concepts::Concepts;
use crate::embed::Embed;
use crate::gallery::Gallery;
use crate::invert::Inversion;
use crate::jobs::{JobKind, Jobs};
use crate::models::{ModelChoice, Models};
use crate::privacy::Requests;
use crate::route::query_param;
use crate::probes::Probes;
use crate::speed::Speed;
use crate::worker_link::{Heard, WorkerLink};

/// Crashes within [`CRASH_WINDOW_MS`] after which the page stops restarting
/// workers (a crash loop helps no one).
const MAX_CRASHES: usize = 4;
const CRASH_WINDOW_MS: f64 = 60_000.0;

/// The worker's life: how it was started and why it was restarted.
#[derive(Clone, Default)]
struct Life {
    /// The GPU was lost once: stay on the CPU.
    cpu_for_good: bool,
    /// Why the current worker replaced the one before, for the badge.
    restart_reason: Option<String>,
    /// The model is being reloaded into a new worker (its results stay valid).
    reloading: bool,
    crash_times: Vec<f64>,
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub link: WorkerLink,
    pub jobs: Jobs,
    pub models: Models,
    pub embed: Embed,
    pub inversion: Inversion,
    pub concepts: Concepts,
    pub audit: Audit,
    pub speed: Speed,
    pub probes: Probes,
    pub gallery: Gallery,
    pub requests: Requests,
    pub backend: RwSignal<Option<BackendInfo>>,
    /// A job-level message to show (not a per-item one).
    pub notice: RwSignal<Option<String>>,
    life: StoredValue<Life>,
}

impl AppState {
    pub fn new() -> Self {
        AppState {
            link: WorkerLink::new(),
            jobs: Jobs::new(),
            models: Models::new(),
            embed: Embed::new(),
            inversion: Inversion::new(),
            concepts: Concepts::new(),
            audit: Audit::new(),
            speed: Speed::new(),
            probes: Probes::new(),
            gallery: Gallery::new(),
            requests: Requests::new(),
            backend: RwSignal::new(None),
            notice: RwSignal::new(None),
            life: StoredValue::new(Life::default()),
        }
    }

    /// Starts the worker and the first model (`?model=`, else the default;
    /// a Hub model named there is asked about before it is downloaded).
    pub fn start(self) {
        self.start_worker();
        let first = query_param("model").map(|m| ModelChoice::parse(&m));
        match first {
            Some(ModelChoice::Hub(id)) => {
                // The app is usable at once with the embedded model; the big download waits for a yes.
                self.load_site_model(crate::models::DEFAULT_MODEL);
                self.ask_for_hub(&id);
            }
            Some(choice) => self.load_choice(&choice),
            None => self.load_site_model(crate::models::DEFAULT_MODEL),
        }
        crate::gallery::load(self);
        self.requests.watch_page();
    }

    fn start_worker(self) {
        if let Err(e) = self.link.start(move |heard| self.hear(heard)) {
            self.notice.set(Some(e));
        }
    }

    pub fn cancel(self, job: JobId) {
        self.link.send(ToWorker::Cancel { job }, Vec::new());
    }

    fn hear(self, heard: Heard) {
        match heard {
            Heard::Message(message) => self.receive(message),
            Heard::Died(message) => self.recover(None, Vec::new(), format!("the compute worker stopped: {message}"), false),
        }
    }

    fn receive(self, message: FromWorker) {
        match message {
            FromWorker::Started => {
                let cpu = self.life.with_value(|l| l.cpu_for_good) || query_param("backend").is_some_and(|b| b == "cpu");
                let backend = if cpu { BackendChoice::Cpu } else { BackendChoice::PreferGpu };
                self.link.send(ToWorker::Init { backend }, Vec::new());
            }
            FromWorker::Ready { mut backend } => {
                if let Some(reason) = self.life.with_value(|l| l.restart_reason.clone()) {
                    backend.fallback_reason = Some(reason);
                }
                self.backend.set(Some(backend));
                self.link.set_ready();
            }
            FromWorker::Progress { job, progress } => self.jobs.progress(job, progress),
            FromWorker::ModelLoaded { model, .. } => {
                let after_restart = self.life.try_update_value(|l| std::mem::take(&mut l.reloading)).unwrap_or(false);
                self.model_loaded(model, after_restart);
            }
            FromWorker::HubProbed { id, download_bytes, cached, .. } => self.hub_probed(id, download_bytes, cached),
            FromWorker::TextsEmbedded { texts, .. } => self.embed.texts.set(texts),
            FromWorker::ImageEmbedded { job, index, result, thumbnail } => self.image_embedded(job, index, result, thumbnail),
            FromWorker::InvertStep { job, step, steps, similarity, resolution } => self.inversion.step(job, step, steps, similarity, resolution),
            FromWorker::InvertHeld { job, paused, .. } => self.inversion.held(job, paused),
            FromWorker::InvertStopped { job, steps_done } => self.inversion.stopped(job, steps_done),
            FromWorker::InvertPreview { job, step, image } => self.inversion.preview(job, step, image),
            FromWorker::Inverted { job, png, image, record, warnings } => {
                self.inversion.inverted(job, &image, &record, warnings);
                crate::gallery::add(self, png, record);
            }
            FromWorker::Finished { job, cancelled } => {
                if cancelled {
                    self.embed_cancelled(job);
                    self.probes.forget(job);
                }
                self.inversion.ended(job, None);
                self.finish(job);
            }
            FromWorker::Failed { job, message } => {
                match self.jobs.kind_of(job) {
                    Some(JobKind::LoadModel) => {
                        self.life.update_value(|l| l.reloading = false);
                        self.model_failed(message);
                    }
                    Some(JobKind::Invert) => self.inversion.ended(job, Some(format!("could not invert: {message}"))),
                    Some(JobKind::ProbeHub) => self.models.error.set(Some(message)),
                    Some(JobKind::Audit) => self.audit.error.set(Some(message)),
                    Some(JobKind::Speed) => self.speed.error.set(Some(message)),
                    Some(JobKind::Probe) => self.probes.error.set(Some(message)),
                    _ => self.notice.set(Some(message)),
                }
                self.finish(job);
            }
            FromWorker::ConceptsReady { job, vocabulary, from_cache, .. } => self.concepts_ready(job, vocabulary, from_cache),
            FromWorker::Decomposed { job, collection } => self.decomposed(job, collection),
            FromWorker::Intervened { intervention, .. } => self.concepts.intervention.set(Some(intervention)),
            FromWorker::AssociationsAudited { job, report, model_sha256 } => self.associations_audited(job, report, model_sha256),
            FromWorker::FolderAudited { job, report, model_sha256 } => self.folder_audited(job, report, model_sha256),
            FromWorker::ProbeImaged { job, image, picture, .. } => self.probe_imaged(job, image, picture),
            FromWorker::Probed { job, report, model_sha256, judge } => self.probed(job, report, model_sha256, judge),
            FromWorker::Debiased { job, report, model_sha256 } => self.debiased(job, report, model_sha256),
            FromWorker::SpeedMeasured { job, report } => self.speed_measured(job, report),
            FromWorker::ProbeViewed { job, view } => self.probe_viewed(job, view),
            FromWorker::Requests { urls } => self.requests.worker_reported(urls),
            FromWorker::DeviceLost { message } => self.recover(None, Vec::new(), format!("the GPU device was lost ({message})"), true),
            FromWorker::Crashed { job, items, message, device_lost } => {
                let what = if device_lost { format!("the GPU device was lost ({message})") } else { format!("the compute worker crashed: {message}") };
                self.recover(job, items, what, device_lost);
            }
        }
    }

    fn finish(self, job: JobId) {
        self.jobs.close(job);
        self.embed.forget_job(job);
    }

    /// The page stopped the worker on purpose (`why`): a new one takes over,
    /// with the model and the unfinished work, on the same device.
    pub fn restart_after_stop(self, why: &str) {
        self.stop_worker(None, &[], why);
        self.restart(why.to_string(), false);
    }

    /// Stops the worker and closes every job row: inversions end with
    /// `what`; `culprit`, the job whose `items` stopped the worker, gets the
    /// blame (an image its message, a model load its failure).
    fn stop_worker(self, culprit: Option<JobId>, items: &[usize], what: &str) {
        self.link.stop();
        for row in self.jobs.close_all() {
            let is_culprit = Some(row.job) == culprit;
            match row.kind {
                JobKind::EmbedImages if is_culprit => self.embed.crashed_on(row.job, items, what),
                JobKind::Invert => self.inversion.ended(row.job, Some(format!("stopped: {what}"))),
                JobKind::LoadModel if is_culprit => self.model_failed(format!("loading it stopped the worker ({what})")),
                _ => {}
            }
            self.embed.forget_job(row.job);
        }
    }

    /// The worker is gone (a panic in `job` on `items`, or a lost GPU): set
    /// aside what caused it, start a new worker (on the CPU only if the GPU
    /// was lost), reload the model and send the unfinished work again.
    fn recover(self, job: Option<JobId>, items: Vec<usize>, what: String, device_lost: bool) {
        self.stop_worker(job, &items, &what);
        let now = js_sys::Date::now();
        let crashes = self
            .life
            .try_update_value(|l| {
                l.crash_times.retain(|t| now - t < CRASH_WINDOW_MS);
                l.crash_times.push(now);
                l.cpu_for_good |= device_lost;
                l.crash_times.len()
            })
            .unwrap_or(0);
        if crashes > MAX_CRASHES {
            self.backend.set(None);
            self.notice.set(Some(format!("{what}; the compute worker stopped {crashes} times in a minute, so it was not restarted: reload the page to try again")));
            return;
        }
        let reason = self.restart(what, device_lost);
        self.notice.set(Some(format!("{reason}: the model is reloaded and unfinished work is done again, without the item that caused it.")));
    }

    /// Starts a new worker (after [`Self::stop_worker`]), reloads the model into
    /// it (once loaded, the unfinished work follows); returns the reason as
    /// the badge tells it.
    fn restart(self, what: String, device_lost: bool) -> String {
        let on_cpu = self.life.with_value(|l| l.cpu_for_good) || device_lost;
        let reason = if on_cpu { format!("{what}; restarted on the CPU") } else { format!("{what}; restarted on the same device") };
        self.life.update_value(|l| {
            l.restart_reason = on_cpu.then(|| reason.clone());
            l.reloading = true;
        });
        self.backend.set(None);
        self.start_worker();
        match self.models.loaded_choice.get_untracked() {
            Some(ModelChoice::Picked) | None => {
                self.life.update_value(|l| l.reloading = false);
                self.models.model.set(None);
                self.models.error.set(Some("the picked model's files went with the stopped worker: pick the folder again".into()));
            }
            Some(choice) => self.load_choice(&choice),
        }
        reason
    }
}
