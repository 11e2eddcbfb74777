//! The app's frame: navigation, the backend and privacy badge, the model
//! manager, the About/Privacy page and the studies still to come.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::embed::EmbedPage;
use crate::invert::InvertPage;
use crate::files;
use crate::link::{AppState, HUB_CHOICE, Running};

/// The model loaded first: the small CLIP trained by CLIP Lens, which the
/// site always serves, so the app works offline from the first visit.
const DEFAULT_MODEL: &str = "world-clip";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Page {
    Embed,
    Invert,
    Concepts,
    Audit,
    About,
}

impl Page {
    const ALL: [Page; 5] = [Page::Embed, Page::Invert, Page::Concepts, Page::Audit, Page::About];

    fn title(self) -> &'static str {
        match self {
            Page::Embed => "Embed & compare",
            Page::Invert => "Invert",
            Page::Concepts => "Concepts",
            Page::Audit => "Audit",
            Page::About => "About & privacy",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Page::Embed => "embed",
            Page::Invert => "invert",
            Page::Concepts => "concepts",
            Page::Audit => "audit",
            Page::About => "about",
        }
    }

    fn from_hash() -> Page {
        let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
        Page::ALL.into_iter().find(|p| hash.trim_start_matches('#') == p.slug()).unwrap_or(Page::Embed)
    }
}

/// A query parameter of the page's URL (`?backend=cpu`, `?model=world-judge`).
pub fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    state.start_worker();
    let first_model = query_param("model").unwrap_or_else(|| DEFAULT_MODEL.to_string());
    state.load_choice(&first_model);
    crate::gallery::load(state);

    let page = RwSignal::new(Page::from_hash());
    let on_hash = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || page.set(Page::from_hash()));
    if let Some(w) = web_sys::window() {
        w.set_onhashchange(Some(on_hash.as_ref().unchecked_ref()));
    }
    on_hash.forget();

    view! {
        <header class="top">
            <h1>"CLIP Lens"</h1>
            <nav>
                {Page::ALL.into_iter().map(|p| view! {
                    <a href=format!("#{}", p.slug()) class:active=move || page.get() == p>{p.title()}</a>
                }).collect_view()}
            </nav>
            <Badge/>
        </header>
        <Notice/>
        <main>
            {move || match page.get() {
                Page::Embed => view! { <ModelManager/> <EmbedPage/> }.into_any(),
                Page::Invert => view! { <ModelManager/> <InvertPage/> }.into_any(),
                Page::About => view! { <About/> }.into_any(),
                other => view! { <Coming title=other.title()/> }.into_any(),
            }}
        </main>
    }
}

/// Where compute runs, and what leaves the page: nothing.
#[component]
fn Badge() -> impl IntoView {
    let state = expect_context::<AppState>();
    let backend = move || match state.backend.get() {
        None => "starting…".to_string(),
        Some(b) if b.kind == "webgpu" => format!("WebGPU: {}", b.name),
        Some(b) => match b.fallback_reason {
            Some(why) => format!("running on CPU: slower ({why})"),
            None => "running on CPU: slower".to_string(),
        },
    };
    view! {
        <div class="badge">
            <span id="backend" data-kind=move || state.backend.get().map(|b| b.kind).unwrap_or_default()>{backend}</span>
            <a id="privacy" href="#about">"0 bytes of your data sent"</a>
        </div>
    }
}

#[component]
fn Notice() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        state.notice.get().map(|text| {
            view! {
                <div class="notice" role="alert">
                    <span>{text}</span>
                    <button on:click=move |_| state.notice.set(None)>"Dismiss"</button>
                </div>
            }
        })
    }
}

/// Choose the model: one this site serves (listed in its manifest), one
/// fetched from the Hugging Face Hub, or a folder on this computer. Shows
/// where the model came from and the browser storage the cache uses.
#[component]
fn ModelManager() -> impl IntoView {
    let state = expect_context::<AppState>();
    let used = RwSignal::new(None::<f64>);
    let refresh = move || {
        leptos::task::spawn_local(async move { used.set(files::storage_used().await) });
    };
    refresh();
    // (id, label) of the site's models; until the manifest arrives (or when
    // offline before any visit), only the default.
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
    let model_line = move || match (state.model.get(), state.model_error.get()) {
        (_, Some(e)) => format!("could not load: {e}"),
        (Some(m), None) => format!(
            "{}: {}, {} px images, {}-d embeddings, {:.1} MB{}; {}",
            m.name,
            m.format,
            m.image_size,
            m.projection_dim,
            m.weight_bytes as f64 / 1e6,
            if m.from_cache { ", from this browser's cache" } else { "" },
            m.source
        ),
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
                    state.load_choice(&event_target_value(&ev));
                    refresh();
                }>
                    {move || site_models.get().into_iter().map(|(id, label)| {
                        let value = id.clone();
                        view! { <option value=value selected=move || state.model_choice.get() == id>{label}</option> }
                    }).collect_view()}
                    {move || state.hub_models.get().into_iter().map(|id| {
                        let choice = format!("{HUB_CHOICE}{id}");
                        let value = choice.clone();
                        view! { <option value=value selected=move || state.model_choice.get() == choice>{format!("{id} (Hugging Face, fetched before)")}</option> }
                    }).collect_view()}
                    {move || {
                        // A choice not in the lists (a Hub model being fetched, picked files) still shows.
                        let choice = state.model_choice.get();
                        let listed = site_models.get().iter().any(|(id, _)| *id == choice)
                            || state.hub_models.get().iter().any(|id| format!("{HUB_CHOICE}{id}") == choice);
                        (!listed && !choice.is_empty()).then(|| {
                            let label = choice.strip_prefix(HUB_CHOICE).unwrap_or(&choice).to_string();
                            view! { <option value=choice.clone() selected=true>{label}</option> }
                        })
                    }}
                </select>
            </label>
            <span class="hub">
                <input type="text" id="hub-id" placeholder="openai/clip-vit-base-patch32" spellcheck="false"
                    title="A Hugging Face model id (owner/name, optionally @revision). Your browser downloads the float weights once, quantizes them to int8 on this page and keeps them in its cache."
                    prop:value=move || hub_input.get()
                    on:input=move |ev| hub_input.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { fetch_hub() }/>
                <button id="hub-load" on:click=move |_| fetch_hub()>"Fetch from Hugging Face"</button>
            </span>
            <label class="button">
                "Use a model folder from this computer…"
                <input type="file" id="model-folder" prop:webkitdirectory=true multiple hidden on:change=move |ev| {
                    let input: web_sys::HtmlInputElement = event_target(&ev);
                    let picked = files::from_list(input.files());
                    if !picked.is_empty() {
                        state.load_files(picked);
                    }
                }/>
            </label>
            <span id="model-status" class:error=move || state.model_error.get().is_some()>{model_line}</span>
            <span class="storage">
                {move || used.get().map(|b| format!("browser storage used: {:.1} MB", b / 1e6))}
                " "
                <button id="delete-cache" on:click=move |_| {
                    leptos::task::spawn_local(async move {
                        files::delete_cached_models().await;
                        files::forget_hub_models();
                        state.hub_models.set(Vec::new());
                        used.set(files::storage_used().await);
                    })
                }>"Delete cached models"</button>
            </span>
        </section>
        <Jobs/>
    }
}

/// Progress bars (steps, ETA) of running jobs, each with Cancel.
#[component]
pub fn Jobs() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <div class="jobs">
            <For each=move || state.running.get() key=|r| (r.job, r.progress.clone().map(|p| (p.done, p.stage))) children=move |r: Running| {
                let job = r.job;
                let (line, fraction) = match &r.progress {
                    Some(p) => {
                        let elapsed = (js_sys::Date::now() - r.stage_started_ms) / 1000.0;
                        let eta = p.eta_seconds(elapsed).map(|s| format!(", about {s:.0} s left")).unwrap_or_default();
                        let amount = if p.unit == "bytes" {
                            let speed = if elapsed > 0.5 { format!(" at {:.1} MB/s", p.done as f64 / 1e6 / elapsed) } else { String::new() };
                            format!("{:.1} of {:.1} MB{speed}", p.done as f64 / 1e6, p.total as f64 / 1e6)
                        } else {
                            format!("{} of {}", p.done, p.total)
                        };
                        (format!("{}: {} {amount}{eta}", r.what, p.stage), p.fraction())
                    }
                    None => (format!("{}: waiting", r.what), 0.0),
                };
                view! {
                    <div class="job" data-job=job>
                        <progress max="1" value=fraction></progress>
                        <span>{line}</span>
                        <button on:click=move |_| state.cancel(job)>"Cancel"</button>
                    </div>
                }
            }/>
        </div>
    }
}

#[component]
fn Coming(title: &'static str) -> impl IntoView {
    view! {
        <section class="coming">
            <h2>{title}</h2>
            <p>"This study is coming. Embed & compare and Invert work today, with the same model and the same privacy."</p>
        </section>
    }
}

#[component]
fn About() -> impl IntoView {
    view! {
        <section class="about">
            <h2>"What runs where"</h2>
            <ul>
                <li>"Everything runs in this tab. Images you add are read by a Web Worker on this page, decoded and embedded there (on your GPU through WebGPU, or on the CPU), and never uploaded."</li>
                <li>"The page fetches only its own files: the app, and model files from this site's " <code>"models/"</code> " folder. Model files are checked against their SHA-256 and kept in this browser's cache, so a reload works offline."</li>
                <li>"Only when you ask for a Hugging Face model does your browser contact huggingface.co, to download that model's public files (a plain GET, nothing of yours in it). The weights are quantized to int8 on this page and kept in this browser's cache."</li>
                <li>"A model folder you pick is read from your disk; nothing is cached or sent."</li>
                <li>"No analytics, no fonts or scripts from elsewhere. A Content-Security-Policy lets the page connect only to its own origin and the Hugging Face Hub."</li>
                <li>"Inversions run in the same worker. Finished ones stay in this browser's storage (the gallery) until you delete them; a PNG you download carries its prompt and settings in its metadata, nothing else."</li>
                <li>"Exports (CSV, JSON, PNG) are made on the page and saved by your browser's download."</li>
            </ul>
            <p>"The embedded models were trained by CLIP Lens on a synthetic world with biases planted on purpose; see " <code>"models/world-clip/CARD.md"</code> "."</p>
        </section>
    }
}
