//! Probes: known findings about CLIP, reproduced in this tab with the loaded
//! model. One card per probe; the worker runs the library's probe
//! (`cliplens::probes`) and answers with a `ProbeView` (sentences, a table, a
//! picture, the files), which this page shows as it is: no probe math here.

use base64::Engine;
use cliplens::probes::attribution::Baseline;
use cliplens::probes::fooling::WORLD_PROMPTS;
use cliplens::probes::view::ProbeView;
use cliplens::protocol::{JobId, ProbeRequest, ToWorker};
use leptos::prelude::*;
use web_sys::File;

use crate::app::AppState;
use crate::files::Picker;
use crate::jobs::JobKind;

#[derive(Clone, Copy)]
pub struct Probes {
    prompt: RwSignal<String>,
    contrast: RwSignal<String>,
    baseline: RwSignal<Baseline>,
    /// The picked picture for attribution (none: a world scene).
    picture: RwSignal<Option<String>>,
    picture_file: StoredValue<Option<File>, LocalStorage>,
    seed: RwSignal<String>,
    scenes: RwSignal<String>,
    fooling_prompts: RwSignal<String>,
    fooling_steps: RwSignal<String>,
    /// Pictures from models trained on web photos start blurred.
    blurred: RwSignal<bool>,
    /// The model `blurred` was last set for.
    blur_for: StoredValue<String>,
    /// The newest result of each probe.
    pub results: RwSignal<Vec<ProbeView>>,
    pub error: RwSignal<Option<String>>,
    /// The job each probe waits for: an older run's answer is dropped.
    pending: StoredValue<Vec<(String, JobId)>>,
}

impl Probes {
    pub fn new() -> Self {
        Probes {
            prompt: RwSignal::new("a photo of a doctor".into()),
            contrast: RwSignal::new(String::new()),
            baseline: RwSignal::new(Baseline::default()),
            picture: RwSignal::new(None),
            picture_file: StoredValue::new_local(None),
            seed: RwSignal::new("1".into()),
            scenes: RwSignal::new("100".into()),
            fooling_prompts: RwSignal::new(WORLD_PROMPTS.join("\n")),
            fooling_steps: RwSignal::new("300".into()),
            blurred: RwSignal::new(false),
            blur_for: StoredValue::new(String::new()),
            results: RwSignal::new(Vec::new()),
            error: RwSignal::new(None),
            pending: StoredValue::new(Vec::new()),
        }
    }

    fn number(what: &str, text: &str, least: u64, most: u64) -> Result<u64, String> {
        match text.trim().parse::<u64>() {
            Ok(n) if (least..=most).contains(&n) => Ok(n),
            _ => Err(format!("{what}: `{}` is not a whole number from {least} to {most}", text.trim())),
        }
    }

    /// A cancelled job's answer, should one still come, is not shown.
    pub fn forget(self, job: JobId) {
        self.pending.update_value(|list| list.retain(|(_, j)| *j != job));
    }
}

impl AppState {
    fn run_literature_probe(self, probe: &'static str, build: impl FnOnce(Probes) -> Result<(String, ProbeRequest), String>) {
        let p = self.probes;
        if self.models.model.get_untracked().is_none() {
            p.error.set(Some("no model is loaded yet".into()));
            return;
        }
        match build(p) {
            Ok((label, request)) => {
                p.error.set(None);
                let files: Vec<File> = match &request {
                    ProbeRequest::Attribution { .. } => p.picture_file.get_value().into_iter().collect(),
                    _ => Vec::new(),
                };
                let job = self.jobs.open(JobKind::Probe, &label);
                // The old result goes: what the card shows is always this run's.
                p.results.update(|all| all.retain(|v| v.probe != probe));
                let old = p.pending.try_update_value(|list| {
                    let old = list.iter().find(|(name, _)| name == probe).map(|(_, j)| *j);
                    list.retain(|(name, _)| name != probe);
                    list.push((probe.to_string(), job));
                    old
                });
                if let Some(Some(old)) = old {
                    self.cancel(old);
                }
                self.link.send(ToWorker::RunProbe { job, request }, files);
            }
            Err(e) => p.error.set(Some(e)),
        }
    }

    pub fn probe_viewed(self, job: JobId, view: ProbeView) {
        let p = self.probes;
        if !p.pending.with_value(|list| list.iter().any(|(name, j)| *j == job && *name == view.probe)) {
            return;
        }
        p.results.update(|all| {
            all.retain(|v| v.probe != view.probe);
            all.push(view);
        });
    }

}

fn png_url(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}

/// The newest result of `probe`: its sentences, table, picture and saves.
#[component]
fn ProbeResult(probe: &'static str) -> impl IntoView {
    let state = expect_context::<AppState>();
    let p = state.probes;
    let save = move |kind: &'static str| {
        move |_| {
            let Some(v) = p.results.with_untracked(|all| all.iter().find(|v| v.probe == probe).cloned()) else { return };
            let name = format!("cliplens-probe-{probe}.{kind}");
            let saved = match kind {
                "json" => crate::files::save(&name, "application/json", &v.json),
                "csv" => crate::files::save(&name, "text/csv", &v.csv),
                "png" => crate::files::save_bytes(&name, "image/png", v.png.as_deref().unwrap_or_default()),
                _ => crate::files::save(&name, "image/svg+xml", v.svg.as_deref().unwrap_or_default()),
            };
            if let Err(e) = saved {
                p.error.set(Some(format!("could not save {name}: {e:?}")));
            }
        }
    };
    move || {
        p.results.with(|all| all.iter().find(|v| v.probe == probe).cloned()).map(|v| {
            let has_svg = v.svg.is_some();
            let has_png = v.png.is_some();
            view! {
                <div class="probe-result" id=format!("probe-{probe}-result")>
                    {v.summary.iter().map(|line| view! { <p>{line.clone()}</p> }).collect_view()}
                    {v.svg.clone().map(|svg| view! {
                        <div class="probe-figure" class:blurred=move || p.blurred.get() inner_html=svg></div>
                    })}
                    {v.png.as_ref().map(|png| view! {
                        <img class="probe-picture" class:blurred=move || p.blurred.get() src=png_url(png) width="192" height="192" alt="the fooling image"/>
                    })}
                    // Focusable: a keyboard can scroll a table wider than a phone.
                    <div class="table-scroll" tabindex="0" role="region" aria-label=format!("{probe} result table")>
                        <table id=format!("probe-{probe}-table")>
                            <thead><tr>{v.headers.iter().map(|h| view! { <th scope="col">{h.clone()}</th> }).collect_view()}</tr></thead>
                            <tbody>
                                {v.rows.iter().map(|row| view! {
                                    <tr>{row.iter().map(|c| view! { <td>{c.clone()}</td> }).collect_view()}</tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <div class="toolbar">
                        <button id=format!("probe-{probe}-json") on:click=save("json")>"Save JSON"</button>
                        <button id=format!("probe-{probe}-csv") on:click=save("csv")>"Save CSV"</button>
                        {has_svg.then(|| view! { <button id=format!("probe-{probe}-svg") on:click=save("svg")>"Save SVG"</button> })}
                        {has_png.then(|| view! { <button id=format!("probe-{probe}-png") on:click=save("png")>"Save PNG"</button> })}
                    </div>
                </div>
            }
        })
    }
}

#[component]
pub fn ProbesPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let p = state.probes;
    // A new model: its pictures start blurred unless it is one of the world's.
    Effect::new(move |_| {
        let Some(model) = state.models.model.get() else { return };
        if p.blur_for.get_value() != model.name {
            p.blur_for.set_value(model.name.clone());
            p.blurred.set(!model.name.starts_with("world-"));
        }
    });
    // More scenes than this would hold the tab for minutes on a CPU for no better figure.
    let scenes = move |p: Probes| Probes::number("world scenes", &p.scenes.get_untracked(), 2, 2000).map(|n| n as usize);
    let seed = move |p: Probes| Probes::number("seed", &p.seed.get_untracked(), 0, u64::MAX);
    let on_pick = Callback::new(move |picked: Vec<(String, File)>| {
        if let Some((name, file)) = picked.into_iter().next() {
            p.picture.set(Some(name));
            p.picture_file.set_value(Some(file));
        }
    });
    let text_field = |id: &'static str, label: &'static str, signal: RwSignal<String>| {
        view! {
            <div class="probe-field">
                <label for=id>{label}</label>
                <input id=id type="text" prop:value=move || signal.get() on:input=move |ev| signal.set(event_target_value(&ev))/>
            </div>
        }
    };
    view! {
        <section class="probes inputs">
            <h2>"Probes: what CLIP gets wrong"</h2>
            <p class="hint">"Known findings from the CLIP literature, reproduced here with the loaded model. The world probes generate their scenes in this tab; your picture never leaves it. Each result can be saved as JSON and CSV, as the command line's "<code>"cliplens probe"</code>" writes them."</p>
            <div class="probe-field">
                <label for="probe-scenes">"World scenes per run"</label>
                <input id="probe-scenes" type="text" inputmode="numeric" prop:value=move || p.scenes.get() on:input=move |ev| p.scenes.set(event_target_value(&ev))/>
            </div>
            <div class="probe-field">
                <label for="probe-seed">"Seed"</label>
                <input id="probe-seed" type="text" inputmode="numeric" prop:value=move || p.seed.get() on:input=move |ev| p.seed.set(event_target_value(&ev))/>
            </div>
            <label><input type="checkbox" id="probe-blur" prop:checked=move || p.blurred.get() on:change=move |ev| p.blurred.set(event_target_checked(&ev))/>" blur pictures (on by default for models other than the world's)"</label>
            {move || p.error.get().map(|e| view! { <p class="error" role="alert" id="probe-error">{e}</p> })}
        </section>

        <section class="probe-card" aria-labelledby="probe-attribution-title">
            <h3 id="probe-attribution-title">"Where the model looks"</h3>
            <p class="hint">"Which pixels raise the picture's similarity to a prompt (or to one prompt over another): gradient × input, integrated gradients (the path's points are doubled until they sum to the score's change within 1%) and occlusion, over the picture; and how much each word of the prompt matters. Without a picture of yours, a fresh world scene is used. The blurred baseline keeps colours and layout and removes shapes: good for roles (their hats); the mean colour removes everything: good for backgrounds."</p>
            {text_field("probe-prompt", "Prompt", p.prompt)}
            {text_field("probe-contrast", "Over this prompt (optional)", p.contrast)}
            <div class="probe-field">
                <label for="probe-baseline">"Baseline"</label>
                <select id="probe-baseline" on:change=move |ev| {
                    let chosen = event_target_value(&ev);
                    if let Ok(b) = Baseline::parse(&chosen) { p.baseline.set(b) }
                }>
                    {Baseline::ALL.iter().map(|b| {
                        let value = match b { Baseline::Mean => "mean", Baseline::Black => "black", Baseline::Blur => "blur" };
                        let b = *b;
                        view! { <option value=value selected=move || p.baseline.get() == b>{b.name()}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="toolbar">
                <Picker label="Pick a picture" id="probe-picture" on_pick=on_pick single=true accept="image/*"/>
                <span class="hint" id="probe-picture-name">{move || p.picture.get().unwrap_or_else(|| "a world scene".into())}</span>
                {move || p.picture.get().is_some().then(|| view! {
                    <button on:click=move |_| { p.picture.set(None); p.picture_file.set_value(None); }>"Use a world scene"</button>
                })}
            </div>
            <div class="toolbar">
                <button id="probe-attribution-run" on:click=move |_| state.run_literature_probe("attribution", move |p| {
                    let prompt = p.prompt.get_untracked();
                    if prompt.trim().is_empty() {
                        return Err("the prompt is empty".into());
                    }
                    let contrast = Some(p.contrast.get_untracked()).filter(|c| !c.trim().is_empty());
                    Ok(("attributing one picture".into(), ProbeRequest::Attribution { prompt, contrast, baseline: p.baseline.get_untracked(), seed: seed(p)? }))
                })>"Explain"</button>
                <button id="probe-attribution-world" on:click=move |_| state.run_literature_probe("attribution", move |p| {
                    let count = scenes(p)?.min(200);
                    Ok((format!("attribution on {count} world scenes"), ProbeRequest::AttributionWorld { count, seed: seed(p)? }))
                })>"Check on world scenes"</button>
            </div>
            <ProbeResult probe="attribution"/>
        </section>

        <section class="probe-card" aria-labelledby="probe-association-title">
            <h3 id="probe-association-title">"Concept association"</h3>
            <p class="hint">"“When are Lemons Purple?” (Yamada et al. 2022): in a picture of two objects, asked one object's colour, the model answers with the other's. World scenes of two different figures (never seen in training) against the same scenes with the first figure alone."</p>
            <div class="toolbar">
                <button id="probe-association-run" on:click=move |_| state.run_literature_probe("association", move |p| {
                    let count = scenes(p)?;
                    Ok((format!("concept association on {count} scenes"), ProbeRequest::Association { count, seed: seed(p)? }))
                })>"Run"</button>
            </div>
            <ProbeResult probe="association"/>
        </section>

        <section class="probe-card" aria-labelledby="probe-social-title">
            <h3 id="probe-social-title">"Social perception, one attribute at a time"</h3>
            <p class="hint">"The CausalFace protocol (Hausladen et al. 2024): pictures that differ only in one attribute (here the world's group, glim or vorn), scored against words (here each role). A negative shift: the change to vorn lowers the role's score. Your own counterfactual pairs and the Stereotype Content Model's warmth and competence words: "<code>"cliplens probe social --pairs"</code>"."</p>
            <div class="toolbar">
                <button id="probe-social-run" on:click=move |_| state.run_literature_probe("social", move |p| {
                    let count = scenes(p)?;
                    Ok((format!("social perception on {count} pairs"), ProbeRequest::Social { count, seed: seed(p)? }))
                })>"Run"</button>
            </div>
            <ProbeResult probe="social"/>
        </section>

        <section class="probe-card" aria-labelledby="probe-fooling-title">
            <h3 id="probe-fooling-title">"Fooling image"</h3>
            <p class="hint">"CLIPMasterPrints (Freiberger et al. 2023): one picture that matches every prompt below better than the best real world scene does, made by inverting towards the direction whose smallest cosine with the prompts is largest. Then the paper's mitigation: every picture moved across the modality gap, and how much of the advantage remains."</p>
            <div class="probe-field">
                <label for="probe-fooling-prompts">"Prompts, one per line"</label>
                <textarea id="probe-fooling-prompts" rows="8" prop:value=move || p.fooling_prompts.get() on:input=move |ev| p.fooling_prompts.set(event_target_value(&ev))></textarea>
            </div>
            {text_field("probe-fooling-steps", "Optimizer steps", p.fooling_steps)}
            <div class="toolbar">
                <button id="probe-fooling-run" on:click=move |_| state.run_literature_probe("fooling", move |p| {
                    let prompts: Vec<String> = p.fooling_prompts.get_untracked().lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
                    if prompts.len() < 2 {
                        return Err("a fooling image needs at least two prompts".into());
                    }
                    let steps = Probes::number("optimizer steps", &p.fooling_steps.get_untracked(), 1, 5000)? as usize;
                    Ok((format!("a fooling image for {} prompts", prompts.len()), ProbeRequest::Fooling { prompts, steps, count: scenes(p)?, seed: seed(p)? }))
                })>"Make"</button>
            </div>
            <ProbeResult probe="fooling"/>
        </section>

        <section class="probe-card" aria-labelledby="probe-gap-title">
            <h3 id="probe-gap-title">"Modality gap"</h3>
            <p class="hint">"“Mind the Gap” (Liang et al. 2022): image and text embeddings sit in two separate regions. World scenes and their captions on their first two principal components, and what closing the gap does to retrieval and zero-shot colour."</p>
            <div class="toolbar">
                <button id="probe-gap-run" on:click=move |_| state.run_literature_probe("gap", move |p| {
                    let count = scenes(p)?;
                    Ok((format!("the modality gap of {count} scenes"), ProbeRequest::Gap { count, seed: seed(p)? }))
                })>"Run"</button>
            </div>
            <ProbeResult probe="gap"/>
        </section>
    }
}
