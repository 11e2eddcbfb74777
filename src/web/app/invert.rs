//! The Inversion studio: a prompt (or a blend of prompts and images), a
//! preset, live preview and similarity curve, pause/resume/cancel, a gallery
//! kept in this browser, side-by-side comparison and PNG download. The
//! worker runs the library's engine; this page only shows it.

use cliplens::invert::output::{InversionRecord, polyline, settings_diff};
use cliplens::invert::target::describe;
use cliplens::invert::{InvertSettings, Parameterization, Preset, TermKind};
use cliplens::protocol::{JobId, ModelInfo, NamedVector, Progress, ProgressUnit, Thumbnail, ToWorker};
use leptos::prelude::*;
use web_sys::File;

use crate::app::AppState;
use crate::files::{self, Picker};
use crate::gallery::{self, GalleryItem};
use crate::jobs::JobKind;

const CURVE_WIDTH: f32 = 320.0;
const CURVE_HEIGHT: f32 = 90.0;

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
    /// What it aims at and with which settings (to finish it in a new worker).
    pub prompt: String,
    pub settings: InvertSettings,
    /// The latest preview at full size, and the step it shows.
    pub last_image: Option<(usize, Thumbnail)>,
}

/// The studio's state: the live inversion and the images the target aims at.
#[derive(Clone, Copy)]
pub struct Inversion {
    pub live: RwSignal<Option<LiveInversion>>,
    /// Images the target also aims at (JS handles, so stored, not signalled);
    /// they outlive the page, which remounts on navigation.
    target_files: StoredValue<Vec<(String, File)>, LocalStorage>,
    /// The target images of the running inversion.
    running_targets: StoredValue<Vec<(String, File)>, LocalStorage>,
    /// Embeddings the target also aims at (a concept mix sent from the Concepts page).
    pub target_vectors: RwSignal<Vec<NamedVector>>,
    running_vectors: StoredValue<Vec<NamedVector>>,
}

/// How long a Cancel may wait for the worker to stop by itself before the
/// page stops the worker (a CPU inside a ViT-B step cannot look at messages).
const CANCEL_GRACE_MS: i32 = 600;

impl Inversion {
    pub fn new() -> Self {
        Inversion {
            live: RwSignal::new(None),
            target_files: StoredValue::new_local(Vec::new()),
            running_targets: StoredValue::new_local(Vec::new()),
            target_vectors: RwSignal::new(Vec::new()),
            running_vectors: StoredValue::new(Vec::new()),
        }
    }

    fn update_job(self, job: JobId, f: impl FnOnce(&mut LiveInversion)) {
        self.live.update(|l| {
            if let Some(l) = l.as_mut().filter(|l| l.job == job) {
                f(l)
            }
        });
    }

    pub fn step(self, job: JobId, step: usize, steps: usize, similarity: f32, resolution: usize) {
        self.update_job(job, |l| {
            l.curve.truncate(step.saturating_sub(1));
            l.curve.push(similarity);
            l.steps = steps;
            l.resolution = resolution;
        });
    }

    pub fn held(self, job: JobId, paused: bool) {
        self.update_job(job, |l| l.held = paused);
    }

    pub fn stopped(self, job: JobId, steps_done: usize) {
        let outcome = if steps_done == 0 { "cancelled before the first step" } else { "cancelled; the image so far is on its way to the gallery" };
        self.ended(job, Some(outcome.into()));
    }

    pub fn preview(self, job: JobId, step: usize, image: Thumbnail) {
        let url = files::thumbnail_url(&image);
        self.update_job(job, |l| {
            l.preview = url;
            l.last_image = Some((step, image));
        });
    }

    pub fn inverted(self, job: JobId, image: &Thumbnail, record: &InversionRecord, warnings: Vec<String>) {
        let url = files::thumbnail_url(image);
        let outcome = if record.stopped {
            format!("cancelled after {} steps; the image so far is in the gallery", record.steps_done)
        } else {
            format!("done: similarity {:.4} after {} steps in {:.1} s", record.similarity, record.steps_done, record.seconds)
        };
        let outcome = warnings.into_iter().fold(outcome, |text, w| format!("{text}; warning: {w}"));
        self.update_job(job, |l| {
            l.preview = url;
            l.outcome = Some(outcome);
        });
    }

    /// The job ended (`outcome` replaces the status line's ending when given).
    pub fn ended(self, job: JobId, outcome: Option<String>) {
        self.update_job(job, |l| {
            if l.running {
                l.running = false;
                l.paused = false;
                l.held = false;
                if outcome.is_some() {
                    l.outcome = outcome;
                }
            }
        });
    }
}

impl AppState {
    /// Starts an inversion with the loaded model (the target images travel as files).
    pub fn start_inversion(self, prompt: String, settings: InvertSettings) {
        if let Some(live) = self.inversion.live.get_untracked().filter(|l| l.running) {
            self.cancel_inversion(live.job);
        }
        let job = self.jobs.open(JobKind::Invert, "inverting");
        let now = js_sys::Date::now();
        self.inversion.live.set(Some(LiveInversion {
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
            prompt: prompt.clone(),
            settings: settings.clone(),
            last_image: None,
        }));
        let targets = self.inversion.target_files.get_value();
        self.inversion.running_targets.set_value(targets.clone());
        let (names, files) = targets.into_iter().unzip();
        let target_vectors = self.inversion.target_vectors.get_untracked();
        self.inversion.running_vectors.set_value(target_vectors.clone());
        self.link.send(ToWorker::Invert { job, prompt, target_images: names, settings, target_vectors }, files);
    }

    /// Cancels inversion `job`. A worker that does not stop within
    /// [`CANCEL_GRACE_MS`] (on a CPU, in the middle of a ViT-B step) is
    /// stopped: a new one takes over, and the image as last previewed is
    /// finished there and joins the gallery.
    pub fn cancel_inversion(self, job: JobId) {
        self.cancel(job);
        let check = wasm_bindgen::closure::Closure::once_into_js(move || {
            let stuck = self.inversion.live.with_untracked(|l| l.as_ref().is_some_and(|l| l.job == job && l.running && l.outcome.is_none()));
            if stuck {
                self.stop_inversion_worker(job);
            }
        });
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(wasm_bindgen::JsCast::unchecked_ref(&check), CANCEL_GRACE_MS);
        }
    }

    fn stop_inversion_worker(self, job: JobId) {
        let Some(live) = self.inversion.live.get_untracked() else { return };
        let elapsed = (js_sys::Date::now() - live.started_ms - live.paused_ms) / 1000.0;
        let finish = live.last_image.clone().map(|(step, image)| {
            let curve: Vec<f32> = live.curve.iter().copied().take(step).collect();
            (step, image, curve)
        });
        let outcome = match &finish {
            Some((step, ..)) => format!("cancelled; the worker was stopped mid-step and replaced, and the image after step {step} is on its way to the gallery"),
            None => "cancelled before the first step".to_string(),
        };
        self.inversion.ended(job, Some(outcome));
        self.restart_after_stop("an inversion was cancelled in the middle of a step");
        if let Some((_, image, curve)) = finish {
            let finish_job = self.jobs.open(JobKind::Invert, "saving the cancelled inversion");
            let (names, files) = self.inversion.running_targets.get_value().into_iter().unzip();
            let message = ToWorker::FinishInversion {
                job: finish_job,
                prompt: live.prompt,
                target_images: names,
                settings: live.settings,
                target_vectors: self.inversion.running_vectors.get_value(),
                image,
                curve,
                seconds: elapsed,
            };
            self.link.send(message, files);
        }
    }

    /// Pauses the running inversion, or lets it go on.
    pub fn toggle_pause(self) {
        let Some(live) = self.inversion.live.get_untracked().filter(|l| l.running) else { return };
        let now = js_sys::Date::now();
        if live.paused {
            self.link.send(ToWorker::Resume { job: live.job }, Vec::new());
        } else {
            self.link.send(ToWorker::Pause { job: live.job }, Vec::new());
        }
        self.inversion.live.update(|l| {
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
}

/// Models trained by CLIP Lens on its synthetic world: their inversions are
/// coloured shapes. Real CLIP models can return disturbing images from
/// harmless prompts (the paper's own finding), so every other model starts
/// blurred. Told by the weights' hash (the committed files, float or int8,
/// as listed in `models/manifest.json` at build time), never by a name,
/// which anyone can give a Hub model.
fn is_world_model(model: &ModelInfo) -> bool {
    static WORLD_WEIGHTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let json = include_bytes!("../../../models/manifest.json");
        let manifest = cliplens::manifest::Manifest::from_json(json, "models/manifest.json").expect("the committed manifest parses");
        manifest
            .models
            .iter()
            .filter(|m| m.id.starts_with("world-"))
            .flat_map(|m| m.files.iter().filter(|f| f.name.ends_with(".safetensors")).map(|f| f.sha256.clone()))
            .collect()
    });
    model.weights_sha256.as_ref().is_some_and(|hash| WORLD_WEIGHTS.contains(hash))
}

#[component]
pub fn InvertPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    // Arriving with a concept mix to invert: the mix alone is the target.
    let arriving_with_mix = state.inversion.target_vectors.with_untracked(|v| !v.is_empty());
    let prompt = RwSignal::new(if arriving_with_mix { String::new() } else { "a photo of a red circle at the top".to_string() });
    let settings = RwSignal::new(Preset::Balanced.settings());
    let preset = RwSignal::new(Some(Preset::Balanced));
    // The picked target images outlive the page (the shell remounts it on
    // navigation), so their names are read back from them.
    let target_files = state.inversion.target_files;
    let target_names = RwSignal::new(target_files.with_value(|files| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()));
    let blur = RwSignal::new(false);
    let image_size = move || state.models.model.with_untracked(|m| m.as_ref().map(|m| m.image_size).unwrap_or(64));
    // Which preset, if any, the settings are (the seed aside).
    let matching_preset = move |s: &InvertSettings| {
        Preset::ALL.into_iter().find(|p| p.settings_for(image_size()) == InvertSettings { seed: 0, ..s.clone() })
    };
    // A new model: blurred results unless it is a world model, and the chosen
    // preset's settings for its input size.
    Effect::new(move |_| {
        if let Some(m) = state.models.model.get() {
            blur.set(!is_world_model(&m));
            if let Some(p) = preset.get_untracked() {
                let seed = settings.with_untracked(|s| s.seed);
                settings.set(InvertSettings { seed, ..p.settings_for(m.image_size) });
            }
        }
    });
    let problem = move || settings.with(|s| s.check().err().map(|e| e.message));
    let running = move || state.inversion.live.with(|l| l.as_ref().is_some_and(|l| l.running));

    let start = move || {
        if problem().is_some() || state.models.model.get_untracked().is_none() {
            return;
        }
        state.start_inversion(prompt.get_untracked(), settings.get_untracked());
    };
    let choose_preset = move |name: String| {
        if let Ok(p) = Preset::from_name(&name) {
            let seed = settings.with_untracked(|s| s.seed);
            settings.set(InvertSettings { seed, ..p.settings_for(image_size()) });
            preset.set(Some(p));
        }
    };
    // A changed setting means the preset no longer describes the settings.
    let edit = move |f: Box<dyn Fn(&mut InvertSettings)>| {
        settings.update(|s| f(s));
        preset.set(matching_preset(&settings.get_untracked()));
    };

    view! {
        <section class="studio">
            <div class="controls">
                <label for="invert-prompt">"What should the image show?"</label>
                <input type="text" id="invert-prompt" spellcheck="false" prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { start() }/>
                <p class="hint">"Blend with + and -, weights with *: " <code>"a red circle + 0.5*a forest - night"</code></p>
                <div class="row">
                    <label>"Preset "
                        <select id="invert-preset" on:change=move |ev| choose_preset(event_target_value(&ev))>
                            {Preset::ALL.into_iter().map(|p| view! {
                                <option value=p.name() selected=move || preset.get() == Some(p)>{p.name()}</option>
                            }).collect_view()}
                            <option value="" disabled=true selected=move || preset.get().is_none()>"custom"</option>
                        </select>
                    </label>
                    <label>"Seed "
                        <input type="number" id="invert-seed" min="0" prop:value=move || settings.with(|s| s.seed.to_string())
                            on:change=move |ev| {
                                if let Ok(v) = event_target_value(&ev).parse() {
                                    settings.update(|s| s.seed = v)
                                }
                            }/>
                    </label>
                    <button id="invert-reroll" title="another random start" on:click=move |_| settings.update(|s| s.seed = (js_sys::Math::random() * 1e6) as u64)>"New seed"</button>
                </div>
                <details class="advanced">
                    <summary>"Settings"</summary>
                    <div class="grid">
                        <NumberField label="steps" id="invert-steps" value=Signal::derive(move || settings.with(|s| s.steps as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.steps = v as usize)))/>
                        <NumberField label="views per step" id="invert-views" value=Signal::derive(move || settings.with(|s| s.views as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.views = v as usize)))/>
                        <label>"parameterization "
                            <select id="invert-parameterization" on:change=move |ev| {
                                let p = if event_target_value(&ev) == "pixels" { Parameterization::Pixels } else { Parameterization::Fourier };
                                edit(Box::new(move |s| s.parameterization = p));
                            }>
                                <option value="fourier" selected=move || settings.with(|s| s.parameterization == Parameterization::Fourier)>"fourier (smooth)"</option>
                                <option value="pixels" selected=move || settings.with(|s| s.parameterization == Parameterization::Pixels)>"pixels"</option>
                            </select>
                        </label>
                        <NumberField label="learning rate" id="invert-lr" value=Signal::derive(move || settings.with(|s| s.learning_rate))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.learning_rate = v)))/>
                        <NumberField label="mean colour rate" id="invert-mean-color" value=Signal::derive(move || settings.with(|s| s.mean_color_rate as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.mean_color_rate = v as f32)))/>
                        <label><input type="checkbox" id="invert-vivid" prop:checked=move || settings.with(|s| s.equal_color_rates)
                            on:change=move |ev| { let on = event_target_checked(&ev); edit(Box::new(move |s| s.equal_color_rates = on)) }/>" vivid colours"</label>
                        <NumberField label="resolution stages" id="invert-stages" value=Signal::derive(move || settings.with(|s| s.resolution_stages as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.resolution_stages = v as usize)))/>
                        <NumberField label="total variation" id="invert-tv" value=Signal::derive(move || settings.with(|s| s.tv_weight as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.tv_weight = v as f32)))/>
                        <NumberField label="smallest crop" id="invert-crop" value=Signal::derive(move || settings.with(|s| s.augment.crop_min as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.augment.crop_min = v as f32)))/>
                        <NumberField label="jitter" id="invert-jitter" value=Signal::derive(move || settings.with(|s| s.augment.jitter as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.augment.jitter = v as f32)))/>
                        <NumberField label="noise" id="invert-noise" value=Signal::derive(move || settings.with(|s| s.augment.noise as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.augment.noise = v as f32)))/>
                        <NumberField label="colour jitter" id="invert-color" value=Signal::derive(move || settings.with(|s| s.augment.color_jitter as f64))
                            on_set=Callback::new(move |v: f64| edit(Box::new(move |s| s.augment.color_jitter = v as f32)))/>
                        <label><input type="checkbox" id="invert-flip" prop:checked=move || settings.with(|s| s.augment.flip)
                            on:change=move |ev| { let on = event_target_checked(&ev); edit(Box::new(move |s| s.augment.flip = on)) }/>" mirror views"</label>
                    </div>
                </details>
                <div class="row">
                    <Picker label="Aim at an image too…" id="invert-target-image" accept="image/*" on_pick=Callback::new(move |picked: Vec<(String, File)>| {
                        target_names.set(picked.iter().map(|(n, _)| n.clone()).collect());
                        target_files.set_value(picked);
                    })/>
                    {move || (!target_names.get().is_empty()).then(|| view! {
                        <span class="targets">{format!("+ {}", target_names.get().join(", "))}
                            <button on:click=move |_| { target_files.set_value(Vec::new()); target_names.set(Vec::new()); }>"remove"</button>
                        </span>
                    })}
                    {move || state.inversion.target_vectors.with(|v| (!v.is_empty()).then(|| {
                        let names = v.iter().map(|x| x.name.clone()).collect::<Vec<_>>().join(", ");
                        view! {
                            <span class="targets" id="invert-target-vectors">{format!("+ {names}")}
                                <button on:click=move |_| state.inversion.target_vectors.set(Vec::new())>"remove"</button>
                            </span>
                        }
                    }))}
                </div>
                {move || problem().map(|p| view! { <p class="item-error" id="invert-problem">{p}</p> })}
                <div class="row">
                    <button id="invert-start" class="primary" disabled=move || problem().is_some() || state.models.model.get().is_none() on:click=move |_| start()>
                        {move || if running() { "Restart" } else { "Invert" }}
                    </button>
                    <button id="invert-pause" disabled=move || !running() on:click=move |_| state.toggle_pause()>
                        {move || if state.inversion.live.with(|l| l.as_ref().is_some_and(|l| l.paused)) { "Resume" } else { "Pause" }}
                    </button>
                    <button id="invert-cancel" disabled=move || !running() on:click=move |_| {
                        if let Some(l) = state.inversion.live.get_untracked() { state.cancel_inversion(l.job) }
                    }>"Cancel"</button>
                    <label><input type="checkbox" id="invert-blur" prop:checked=move || blur.get()
                        on:change=move |ev| blur.set(event_target_checked(&ev))/>" blur images"</label>
                </div>
                <p class="hint">"The image is optimized in this browser until the model's embedding of it matches the prompt: what the model \"sees\" in the words. Nothing is uploaded."</p>
            </div>
            <Live blur/>
        </section>
        <GalleryView blur on_reuse=Callback::new(move |item: GalleryItem| {
            // Only the text terms can go back into the prompt box; image
            // terms would be read as the words "[name.png]".
            let texts: Vec<_> = item.record.target.iter().filter(|t| t.kind == TermKind::Text).cloned().collect();
            prompt.set(describe(&texts));
            settings.set(item.record.settings.clone());
            preset.set(matching_preset(&item.record.settings));
        })/>
    }
}

#[component]
fn NumberField(label: &'static str, id: &'static str, value: Signal<f64>, on_set: Callback<f64>) -> impl IntoView {
    view! {
        <label>{label}" "
            <input type="number" id=id step="any" prop:value=move || value.get().to_string()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        on_set.run(v)
                    }
                }/>
        </label>
    }
}

/// The running inversion: preview, curve, status.
#[component]
fn Live(blur: RwSignal<bool>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let status = move || {
        let l = state.inversion.live.get()?;
        let step = l.curve.len();
        let now = js_sys::Date::now();
        let paused_now = l.paused_since.map(|s| now - s).unwrap_or(0.0);
        let elapsed = ((now - l.started_ms - l.paused_ms - paused_now) / 1000.0).max(0.0);
        let progress = Progress { stage: "inverting".into(), done: step as u64, total: l.steps as u64, unit: ProgressUnit::Steps };
        let mut line = format!("step {step} of {}", l.steps);
        if let Some(s) = l.curve.last() {
            line.push_str(&format!(" · similarity {s:.4}"));
        }
        if l.resolution > 0 {
            line.push_str(&format!(" · {} px", l.resolution));
        }
        if l.running && step > 0 && elapsed > 0.0 {
            line.push_str(&format!(" · {:.1} steps/s", step as f64 / elapsed));
            if let Some(eta) = progress.eta_seconds(elapsed) {
                line.push_str(&format!(" · about {eta:.0} s left"));
            }
        }
        if l.held {
            line.push_str(" · paused");
        } else if l.paused {
            line.push_str(" · pausing after this step…");
        }
        if let Some(outcome) = &l.outcome {
            line = format!("{line} · {outcome}");
        }
        Some(line)
    };
    view! {
        <div class="live">
            <div class="preview" class:blurred=move || blur.get()>
                {move || match state.inversion.live.get().and_then(|l| l.preview) {
                    Some(src) => view! { <img id="invert-preview" src=src alt="the image being optimized"/> }.into_any(),
                    None => view! { <div class="placeholder">"the image appears here"</div> }.into_any(),
                }}
            </div>
            <svg id="invert-curve" width=CURVE_WIDTH height=CURVE_HEIGHT viewBox=format!("0 0 {CURVE_WIDTH} {CURVE_HEIGHT}")>
                <polyline fill="none" stroke="currentColor" stroke-width="1.5"
                    points=move || state.inversion.live.get().map(|l| polyline(&l.curve, l.steps, CURVE_WIDTH, CURVE_HEIGHT)).unwrap_or_default()/>
            </svg>
            <p class="hint">"similarity of each step's augmented views to the target"</p>
            <p id="invert-status">{status}</p>
            // Announced when the run ends (the line above changes every step).
            <p class="visually-hidden" role="status">{move || state.inversion.live.get().and_then(|l| l.outcome)}</p>
        </div>
    }
}

/// Finished inversions in this browser, with download, reuse, compare and delete.
#[component]
fn GalleryView(blur: RwSignal<bool>, on_reuse: Callback<GalleryItem>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let compared = RwSignal::new(Vec::<String>::new());
    let toggle = move |id: String| {
        compared.update(|c| {
            if let Some(i) = c.iter().position(|x| *x == id) {
                c.remove(i);
            } else {
                c.push(id);
                if c.len() > 2 {
                    c.remove(0);
                }
            }
        })
    };
    view! {
        <section class="gallery">
            <h3>"Gallery " <span class="hint">"(kept in this browser)"</span></h3>
            {move || state.gallery.items.get().is_empty().then(|| view! { <p class="hint">"Finished inversions appear here."</p> })}
            <div class="items" class:blurred=move || blur.get()>
                <For each=move || state.gallery.items.get() key=|item| item.id.clone() children=move |item: GalleryItem| {
                    let id = item.id.clone();
                    let (download_item, reuse_item) = (item.clone(), item.clone());
                    let (compare_id, remove_id) = (id.clone(), id.clone());
                    let r = &item.record;
                    let caption = format!("{:.3} · {} steps × {} views · seed {}{}", r.similarity, r.steps_done, r.settings.views, r.settings.seed,
                        if r.stopped { " · cancelled" } else { "" });
                    view! {
                        <figure class="item" data-id=id.clone()>
                            <img src=item.url.clone() alt=r.description.clone()/>
                            <figcaption><strong>{r.description.clone()}</strong><br/>{caption}<br/><span class="hint">{r.model.clone()}</span></figcaption>
                            <div class="row">
                                <button class="download" on:click=move |_| gallery::download(&download_item)>"PNG"</button>
                                <button on:click=move |_| on_reuse.run(reuse_item.clone())>"Reuse"</button>
                                <label><input type="checkbox" class="compare" prop:checked=move || compared.get().contains(&compare_id)
                                    on:change={ let id = id.clone(); move |_| toggle(id.clone()) }/>" compare"</label>
                                <button on:click=move |_| gallery::remove(state, &remove_id)>"Delete"</button>
                            </div>
                        </figure>
                    }
                }/>
            </div>
            {move || {
                let chosen = compared.get();
                let items = state.gallery.items.get();
                let pick = |id: &String| items.iter().find(|i| i.id == *id).cloned();
                match chosen.as_slice() {
                    [a, b] => pick(a).zip(pick(b)).map(|(a, b)| view! { <Compare a b blur/> }),
                    _ => None,
                }
            }}
        </section>
    }
}

/// Two results side by side, with the settings they differ in.
#[component]
fn Compare(a: GalleryItem, b: GalleryItem, blur: RwSignal<bool>) -> impl IntoView {
    let diff = settings_diff(&a.record.settings, &b.record.settings);
    let same_target = a.record.description == b.record.description;
    let side = |item: &GalleryItem| {
        let r = &item.record;
        view! {
            <figure>
                <img src=item.url.clone() alt=r.description.clone()/>
                <figcaption><strong>{r.description.clone()}</strong><br/>
                    {format!("similarity {:.4} · {} · {:.1} s", r.similarity, r.model, r.seconds)}</figcaption>
            </figure>
        }
    };
    view! {
        <div id="invert-compare" class="compare-panel">
            <div class="pair" class:blurred=move || blur.get()>{side(&a)}{side(&b)}</div>
            <table>
                <thead><tr><th>"setting"</th><th>"left"</th><th>"right"</th></tr></thead>
                <tbody>
                    {(!same_target).then(|| view! { <tr><td>"target"</td><td>{a.record.description.clone()}</td><td>{b.record.description.clone()}</td></tr> })}
                    {diff.into_iter().map(|(k, x, y)| view! { <tr><td>{k}</td><td>{x}</td><td>{y}</td></tr> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
