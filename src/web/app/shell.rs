//! The app's frame: navigation, the backend and privacy badge, the notice
//! line, the About/Privacy page and the studies still to come.

use cliplens::protocol::BackendKind;
use leptos::prelude::*;

use crate::app::AppState;
use crate::audit::AuditPage;
use crate::concepts::ConceptsPage;
use crate::embed::EmbedPage;
use crate::invert::InvertPage;
use crate::jobs::Jobs;
use crate::models::ModelManager;
use crate::privacy::hosts;
use crate::route::{Route, current_route};
use crate::probes::ProbesPage;
use crate::speed::SpeedPage;

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    provide_context::<Jobs>(state.jobs);
    state.start();
    let route = current_route();
    view! {
        <header class="top">
            <h1>"CLIP Lens"</h1>
            <nav>
                {Route::ALL.into_iter().map(|r| view! {
                    <a href=r.href() class:active=move || route.get() == r
                        aria-current=move || (route.get() == r).then_some("page")>{r.title()}</a>
                }).collect_view()}
            </nav>
            <Badge/>
        </header>
        <Notice/>
        <main>
            {move || match route.get() {
                Route::Embed => view! { <ModelManager/> <EmbedPage/> }.into_any(),
                Route::Invert => view! { <ModelManager/> <InvertPage/> }.into_any(),
                Route::Concepts => view! { <ModelManager/> <ConceptsPage/> }.into_any(),
                Route::Audit => view! { <ModelManager/> <AuditPage/> }.into_any(),
                Route::Probes => view! { <ModelManager/> <ProbesPage/> }.into_any(),
                Route::Speed => view! { <ModelManager/> <SpeedPage/> }.into_any(),
                Route::About => view! { <About/> }.into_any(),
            }}
        </main>
    }
}

/// Where compute runs, and how many requests left this site (measured).
#[component]
fn Badge() -> impl IntoView {
    let state = expect_context::<AppState>();
    let backend = move || match state.backend.get() {
        None => "starting…".to_string(),
        Some(b) if b.kind == BackendKind::WebGpu => format!("WebGPU: {}", b.name),
        Some(b) => match b.fallback_reason {
            Some(why) => format!("running on CPU: slower ({why})"),
            None => "running on CPU: slower".to_string(),
        },
    };
    let offsite = move || {
        let all = state.requests.all();
        match all.len() {
            0 => "no request left this site".to_string(),
            1 => format!("1 request left this site (to {})", hosts(&all)[0].0),
            n => format!("{n} requests left this site (to {})", hosts(&all).into_iter().map(|(h, _)| h).collect::<Vec<_>>().join(", ")),
        }
    };
    view! {
        <div class="badge">
            <span id="backend" data-kind=move || state.backend.get().map(|b| b.kind.as_str()).unwrap_or_default()>{backend}</span>
            <a id="privacy" href=Route::About.href() data-offsite=move || state.requests.all().len()
                title="Counted from the browser's own record of this page's and its worker's requests. None carries your images or results.">{offsite}</a>
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

#[component]
fn About() -> impl IntoView {
    let state = expect_context::<AppState>();
    let requests = move || {
        let all = state.requests.all();
        if all.is_empty() {
            view! { <p id="offsite-list">"So far no request has left this site."</p> }.into_any()
        } else {
            view! {
                <div id="offsite-list">
                    <p>{format!("So far {} requests left this site, all downloads of public model files you asked for:", all.len())}</p>
                    <ul>{hosts(&all).into_iter().map(|(h, n)| view! { <li>{format!("{h}: {n}")}</li> }).collect_view()}</ul>
                </div>
            }.into_any()
        }
    };
    view! {
        <section class="about">
            <h2>"What runs where"</h2>
            <ul>
                <li>"Everything runs in this tab. Images you add are read by a Web Worker on this page, decoded and embedded there (on your GPU through WebGPU, or on the CPU), and never uploaded."</li>
                <li>"The page fetches only its own files: the app, and model files from this site's " <code>"models/"</code> " folder. Model files are checked against their SHA-256 and kept in this browser's cache, so a reload works offline."</li>
                <li>"Only when you ask for a Hugging Face model does your browser contact huggingface.co (and the download servers it sends the browser to), to fetch that model's public files: plain GETs with nothing of yours in them. The weights are quantized to int8 on this page and kept in this browser's cache."</li>
                <li>"A model folder you pick is read from your disk; nothing is cached or sent."</li>
                <li>"No analytics, no fonts or scripts from elsewhere. A Content-Security-Policy lets the page and its worker connect only to this site and the Hugging Face Hub."</li>
                <li>"Inversions run in the same worker. Finished ones stay in this browser's storage (the gallery) until you delete them. A PNG you download carries, in its metadata, the model's name, the prompt, the file names (never the folders) of images it aimed at, the settings and the similarity curve: nothing else."</li>
                <li>"Exports (CSV, JSON, PNG) are made on the page and saved by your browser's download."</li>
            </ul>
            <h2>"Requests that left this site"</h2>
            {requests}
            <p>"The embedded models were trained by CLIP Lens on a synthetic world with biases planted on purpose; see " <code>"models/world-clip/CARD.md"</code> "."</p>
        </section>
    }
}
