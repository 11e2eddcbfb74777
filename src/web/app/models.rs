//! Which model the page uses: the site's models (its manifest), Hugging Face
//! models (asked before a download when named in the URL), picked folders;
//! its state, and the model manager that shows and changes it.

use cliplens::hub::{DEFAULT_HUB, HubModel, check_mirror};
use cliplens::protocol::{ModelInfo, ToWorker};
use cliplens::weights::WeightFormat;
use leptos::prelude::*;
use web_sys::File;

use crate::app::AppState;
use crate::files::{self, Picker};
use crate::jobs::{JobKind, JobList};
use crate::route::{page_origin, query_param};

/// The model loaded first: the small CLIP trained by CLIP Lens, which the
/// site always serves, so the app works offline from the first visit.
pub const DEFAULT_MODEL: &str = "world-clip";

/// A choice of the model list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    /// An id of the site's `models/manifest.json`.
    Site(String),
    /// A Hugging Face model id (`owner/name[@revision]`).
    Hub(String),
    /// A folder picked from this computer (its files went to the worker).
    Picked,
}

impl ModelChoice {
    /// `hub:owner/name` or a site id, as `?model=` and the list's values name it.
    pub fn parse(value: &str) -> ModelChoice {
        match value.strip_prefix("hub:") {
            Some(id) => ModelChoice::Hub(id.to_string()),
            None if value == "picked" => ModelChoice::Picked,
            None => ModelChoice::Site(value.to_string()),
        }
    }

    pub fn value(&self) -> String {
        match self {
            ModelChoice::Site(id) => id.clone(),
            ModelChoice::Hub(id) => format!("hub:{id}"),
            ModelChoice::Picked => "picked".into(),
        }
    }

    pub fn label(&self) -> String {
        match self {
            ModelChoice::Site(id) | ModelChoice::Hub(id) => id.clone(),
            ModelChoice::Picked => "picked files".into(),
        }
    }
}

/// A Hub download waiting for the visitor's yes.
#[derive(Clone, Debug, PartialEq)]
pub struct HubAsk {
    pub id: String,
    pub download_bytes: Option<u64>,
}

#[derive(Clone, Copy)]
pub struct Models {
    pub model: RwSignal<Option<ModelInfo>>,
    /// The model being loaded, or loaded.
    pub choice: RwSignal<ModelChoice>,
    /// The choice of the model now loaded: the list returns to it when
    /// another choice fails to load (the worker keeps that model).
    pub loaded_choice: RwSignal<Option<ModelChoice>>,
    pub error: RwSignal<Option<String>>,
    /// Hub models fetched in this browser before (for the model list).
    pub hub_models: RwSignal<Vec<String>>,
    /// The Hub or mirror to download from (`?hub=`), or why it was refused.
    pub hub: Signal<Result<String, String>>,
    pub ask: RwSignal<Option<HubAsk>>,
}

impl Models {
    pub fn new() -> Self {
        let hub = match query_param("hub") {
            Some(h) => check_mirror(&h, &page_origin()),
            None => Ok(DEFAULT_HUB.to_string()),
        };
        Models {
            model: RwSignal::new(None),
            choice: RwSignal::new(ModelChoice::Site(DEFAULT_MODEL.into())),
            loaded_choice: RwSignal::new(None),
            error: RwSignal::new(None),
            hub_models: RwSignal::new(files::remembered_hub_models()),
            hub: Signal::stored(hub),
            ask: RwSignal::new(None),
        }
    }
}

impl AppState {
    pub fn load_choice(self, choice: &ModelChoice) {
        match choice {
            ModelChoice::Site(id) => self.load_site_model(id),
            ModelChoice::Hub(id) => self.load_hub(id),
            ModelChoice::Picked => self.models.error.set(Some("the picked model's files are gone: pick the folder again".into())),
        }
    }

    pub fn load_site_model(self, id: &str) {
        self.models.choice.set(ModelChoice::Site(id.into()));
        self.models.error.set(None);
        let job = self.jobs.open(JobKind::LoadModel, &format!("loading {id}"));
        self.link.send(ToWorker::LoadBundled { job, id: id.into() }, Vec::new());
    }

    /// Downloads (or takes from the cache) a model from the Hub or `?hub=`'s mirror.
    pub fn load_hub(self, text: &str) {
        self.models.ask.set(None);
        let hub = match self.models.hub.get_untracked() {
            Ok(hub) => hub,
            Err(e) => return self.models.error.set(Some(e)),
        };
        let model = match HubModel::parse(text) {
            Ok(m) => m,
            Err(e) => return self.models.error.set(Some(e)),
        };
        let id = model.label();
        self.models.choice.set(ModelChoice::Hub(id.clone()));
        self.models.error.set(None);
        let job = self.jobs.open(JobKind::LoadModel, &format!("loading {id}"));
        self.link.send(ToWorker::LoadHub { job, id, hub }, Vec::new());
    }

    /// A Hub model named in the URL: asks the worker for its size first, and
    /// the visitor before downloading it (see [`AppState::hub_probed`]).
    pub fn ask_for_hub(self, text: &str) {
        let hub = match self.models.hub.get_untracked() {
            Ok(hub) => hub,
            Err(e) => return self.models.error.set(Some(e)),
        };
        let job = self.jobs.open(JobKind::ProbeHub, &format!("looking up {text}"));
        self.link.send(ToWorker::ProbeHub { job, id: text.into(), hub }, Vec::new());
    }

    /// The worker's answer to a probe: load a cached model at once, else ask.
    pub fn hub_probed(self, id: String, download_bytes: Option<u64>, cached: bool) {
        if cached {
            self.load_hub(&id);
        } else {
            self.models.ask.set(Some(HubAsk { id, download_bytes }));
        }
    }

    pub fn load_picked(self, picked: Vec<(String, File)>) {
        self.models.choice.set(ModelChoice::Picked);
        self.models.error.set(None);
        let job = self.jobs.open(JobKind::LoadModel, "loading the picked model");
        let (names, files) = picked.into_iter().unzip();
        self.link.send(ToWorker::LoadFiles { job, names }, files);
    }

    /// A model finished loading; `after_restart` when it is the same model
    /// reloaded into a new worker (its results so far stay valid).
    pub fn model_loaded(self, model: ModelInfo, after_restart: bool) {
        let choice = self.models.choice.get_untracked();
        if let ModelChoice::Hub(id) = &choice {
            files::remember_hub_model(id);
            self.models.hub_models.set(files::remembered_hub_models());
        }
        self.models.loaded_choice.set(Some(choice));
        // The worker holds no dictionary for this model yet (a new model, or a new worker).
        self.concepts_model_changed(after_restart);
        self.models.model.set(Some(model));
        if after_restart {
            self.embed_unfinished();
        } else {
            // Every embedding so far belongs to the previous model.
            self.reembed_everything();
        }
    }

    /// A model failed to load: the worker still has the one before, if any.
    pub fn model_failed(self, message: String) {
        self.models.error.set(Some(message));
        if let Some(choice) = self.models.loaded_choice.get_untracked() {
            self.models.choice.set(choice);
        }
    }
}

/// The model list's entries: the site's models (from its manifest) and the
/// Hub models fetched before, as (value, label).
fn model_options(site: &[(String, String)], hub: &[String], current: &ModelChoice) -> Vec<(String, String)> {
    let mut options: Vec<(String, String)> = site.to_vec();
    options.extend(hub.iter().map(|id| (ModelChoice::Hub(id.clone()).value(), format!("{id} (Hugging Face, fetched before)"))));
    // A choice not in the lists (a Hub model being fetched, picked files) still shows.
    if !options.iter().any(|(v, _)| *v == current.value()) {
        options.push((current.value(), current.label()));
    }
    options
}

/// Choose the model: one this site serves, one fetched from the Hugging Face
/// Hub, or a folder on this computer. Shows where the model came from, the
/// jobs in progress and the browser storage the cache uses.
#[component]
pub fn ModelManager() -> impl IntoView {
    let state = expect_context::<AppState>();
    let models = state.models;
    let used = RwSignal::new(None::<f64>);
    let refresh = move || leptos::task::spawn_local(async move { used.set(files::storage_used().await) });
    refresh();
    // (value, label) of the site's models; until the manifest arrives (or
    // when offline before any visit), only the default.
    let site_models = RwSignal::new(vec![(DEFAULT_MODEL.to_string(), DEFAULT_MODEL.to_string())]);
    leptos::task::spawn_local(async move {
        if let Some(manifest) = files::site_manifest().await {
            let listed: Vec<(String, String)> = manifest
                .models
                .iter()
                .map(|m| {
                    let bytes: u64 = m.files_to_fetch().map(|f| f.iter().map(|f| f.bytes).sum()).unwrap_or(0);
                    (m.id.clone(), format!("{} ({:.1} MB, from this site)", m.id, bytes as f64 / 1e6))
                })
                .collect();
            if !listed.is_empty() {
                site_models.set(listed);
            }
        }
    });
    let describe = |m: &ModelInfo| {
        format!(
            "{}: {}, {} px images, {}-d embeddings, {:.1} MB{}; {}",
            m.name,
            match m.format {
                WeightFormat::Int8 => "int8",
                WeightFormat::Float => "float32",
            },
            m.image_size,
            m.projection_dim,
            m.weight_bytes as f64 / 1e6,
            if m.from_cache { ", from this browser's cache" } else { "" },
            m.source
        )
    };
    let model_line = move || match (models.model.get(), models.error.get()) {
        // The worker keeps the model it had: say which one is still in use.
        (Some(m), Some(e)) => format!("could not load: {e} (still using {})", describe(&m)),
        (None, Some(e)) => format!("could not load: {e}"),
        (Some(m), None) => describe(&m),
        (None, None) => "loading…".to_string(),
    };
    let hub_input = RwSignal::new(String::new());
    let fetch_hub = move || {
        state.load_hub(&hub_input.get_untracked());
        refresh();
    };
    view! {
        <section class="models">
            <label>
                "Model "
                <select id="model-select" on:change=move |ev| {
                    state.load_choice(&ModelChoice::parse(&event_target_value(&ev)));
                    refresh();
                }>
                    {move || {
                        let current = models.choice.get();
                        model_options(&site_models.get(), &models.hub_models.get(), &current).into_iter().map(|(value, label)| {
                            let selected = value == current.value();
                            view! { <option value=value selected=selected>{label}</option> }
                        }).collect_view()
                    }}
                </select>
            </label>
            <span class="hub">
                <input type="text" id="hub-id" placeholder="openai/clip-vit-base-patch32" spellcheck="false"
                    aria-label="Hugging Face model id"
                    title="A Hugging Face model id (owner/name, optionally @revision). Your browser downloads the float weights once, quantizes them to int8 on this page and keeps them in its cache."
                    prop:value=move || hub_input.get()
                    on:input=move |ev| hub_input.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { fetch_hub() }/>
                <button id="hub-load" on:click=move |_| fetch_hub()>"Fetch from Hugging Face"</button>
            </span>
            <Picker label="Use a model folder from this computer…" id="model-folder" folder=true on_pick=Callback::new(move |picked: Vec<(String, web_sys::File)>| {
                if !picked.is_empty() {
                    state.load_picked(picked);
                }
            })/>
            <span id="model-status" role="status" class:error=move || models.error.get().is_some()>{model_line}</span>
            <span class="storage">
                {move || used.get().map(|b| format!("browser storage used: {:.1} MB", b / 1e6))}
                " "
                <button id="delete-cache" on:click=move |_| {
                    leptos::task::spawn_local(async move {
                        files::delete_cached_models().await;
                        files::forget_hub_models();
                        models.hub_models.set(Vec::new());
                        used.set(files::storage_used().await);
                    })
                }>"Delete cached models and embeddings"</button>
            </span>
        </section>
        <HubQuestion/>
        <JobList on_cancel=Callback::new(move |job| state.cancel(job))/>
    }
}

/// "Download openai/clip-vit-base-patch32 (605 MB) from huggingface.co?":
/// a Hub model named in the page's address is never fetched unasked.
#[component]
fn HubQuestion() -> impl IntoView {
    let state = expect_context::<AppState>();
    let models = state.models;
    move || {
        models.ask.get().map(|ask| {
            let host = models.hub.get_untracked().unwrap_or_default();
            let size = match ask.download_bytes {
                Some(b) => format!("{:.0} MB", b as f64 / 1e6),
                None => "a download of unknown size".into(),
            };
            let id = ask.id.clone();
            view! {
                <div class="ask" id="hub-ask" role="alertdialog" aria-labelledby="hub-ask-text">
                    <p id="hub-ask-text">
                        {format!("This link asks for {} from {host}: {size}. Your browser downloads its weights, quantizes them to int8 in this tab and keeps them in its cache (about a quarter of that size). Nothing of yours is sent.", ask.id)}
                    </p>
                    <button id="hub-ask-yes" class="primary" on:click=move |_| state.load_hub(&id)>{format!("Download ({size})")}</button>
                    <button id="hub-ask-no" on:click=move |_| models.ask.set(None)>"Not now"</button>
                </div>
            }
        })
    }
}
