//! Concepts (SpLiCE): the images on the page (the same rows as Embed &
//! compare, plus an optional second folder B) written as sparse mixes of
//! words. A vocabulary is encoded once per model in the worker (cached), a
//! sparsity slider re-solves from the embeddings already there, and the
//! collection view shows the histogram, A against B, a concept search and
//! an intervention. The worker and the library do all the math.

use cliplens::concepts::collection::{Intervention, rank_by_concept, results_csv};
use cliplens::concepts::{BuiltinVocabulary, DecomposeReport, ImageReport, Sparsity, VocabularyInfo, default_vocabulary_for, sparsity_json};
use cliplens::protocol::{CollectionDecomposition, JobId, ToWorker, VocabularyChoice};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::app::AppState;
use crate::embed::ImageDrop;
use crate::files::{self, Picker};
use crate::jobs::JobKind;

/// Slider bounds: SpLiCE reads well from 3 to 50 concepts.
const L0_MIN: usize = 1;
const L0_MAX: usize = 50;
const L0_DEFAULT: usize = 10;
/// Concepts shown per chart, histogram and comparison.
const SHOWN: usize = 12;
/// Image cards drawn at first (and per "show more").
pub const CARDS_PER_PAGE: usize = 60;
/// A slider move waits this long for the next one before solving.
const DEBOUNCE_MS: i32 = 150;

/// The last decomposition of the page's images.
#[derive(Clone, Debug, PartialEq)]
pub struct ConceptsView {
    /// Row ids, in the order of `results` (A first, then B).
    pub rows: Vec<usize>,
    pub split: usize,
    pub l0: usize,
    pub collection: CollectionDecomposition,
}

#[derive(Clone, Copy)]
pub struct Concepts {
    /// The dictionary the worker has ready (None while none or encoding).
    pub ready: RwSignal<Option<(VocabularyInfo, bool)>>,
    /// The list chosen in the menu: a built-in name, or "custom".
    pub choice: RwSignal<String>,
    custom: StoredValue<Option<(String, Vec<String>)>>,
    pub l0: RwSignal<usize>,
    /// Rows added as folder B (the rest of the page's images are A).
    pub b_rows: RwSignal<Vec<usize>>,
    pub view: RwSignal<Option<ConceptsView>>,
    /// The decomposition job in flight, with the rows and split it was sent.
    pending: StoredValue<Option<(JobId, Vec<usize>, usize, usize)>>,
    /// Prepare and decompose jobs in flight (to cancel a stale one).
    preparing: StoredValue<Option<JobId>>,
    pub search: RwSignal<Option<String>>,
    pub intervention: RwSignal<Option<Intervention>>,
    /// Image cards drawn ("show more" adds a page). Kept here, not in the
    /// cards' component: a new decomposition (the slider, an added image,
    /// coming back to the page) redraws the cards and must not fold them up.
    pub cards_shown: RwSignal<usize>,
    /// How many dictionaries the worker encoded (not read from the cache)
    /// since the page opened: the slider must not add to it.
    pub encodings: RwSignal<u32>,
    timer: StoredValue<Option<i32>>,
}

impl Concepts {
    pub fn new() -> Self {
        Concepts {
            ready: RwSignal::new(None),
            choice: RwSignal::new(String::new()),
            custom: StoredValue::new(None),
            l0: RwSignal::new(L0_DEFAULT),
            b_rows: RwSignal::new(Vec::new()),
            view: RwSignal::new(None),
            pending: StoredValue::new(None),
            preparing: StoredValue::new(None),
            search: RwSignal::new(None),
            intervention: RwSignal::new(None),
            cards_shown: RwSignal::new(CARDS_PER_PAGE),
            encodings: RwSignal::new(0),
            timer: StoredValue::new(None),
        }
    }
}

impl AppState {
    /// Asks the worker for the dictionary of the chosen list.
    pub fn prepare_concepts(self) {
        let c = self.concepts;
        let Some(model) = self.models.model.get_untracked() else { return };
        if c.choice.get_untracked().is_empty() {
            c.choice.set(default_vocabulary_for(&model.name).name().to_string());
        }
        let choice = c.choice.get_untracked();
        let vocabulary = match BuiltinVocabulary::from_name(&choice) {
            Some(name) => VocabularyChoice::Builtin { name },
            None => match c.custom.get_value() {
                Some((source, words)) => VocabularyChoice::Custom { source, words },
                None => return,
            },
        };
        if let Some(old) = c.preparing.get_value() {
            self.cancel(old);
        }
        c.ready.set(None);
        let job = self.jobs.open(JobKind::Concepts, "preparing the concept dictionary");
        c.preparing.set_value(Some(job));
        self.link.send(ToWorker::PrepareConcepts { job, vocabulary }, Vec::new());
    }

    pub fn concepts_ready(self, job: JobId, vocabulary: VocabularyInfo, from_cache: bool) {
        let c = self.concepts;
        if c.preparing.get_value() == Some(job) {
            c.preparing.set_value(None);
        }
        if !from_cache {
            c.encodings.update(|n| *n += 1);
        }
        c.ready.set(Some((vocabulary, from_cache)));
        self.decompose_now();
    }

    /// Solves again after the slider settles (no re-encoding: the worker
    /// keeps the dictionary).
    pub fn decompose_soon(self) {
        let c = self.concepts;
        if let Some(t) = c.timer.get_value() {
            if let Some(w) = web_sys::window() {
                w.clear_timeout_with_handle(t);
            }
        }
        let later = Closure::once_into_js(move || {
            self.concepts.timer.set_value(None);
            self.decompose_now();
        });
        let handle = web_sys::window()
            .and_then(|w| w.set_timeout_with_callback_and_timeout_and_arguments_0(later.unchecked_ref(), DEBOUNCE_MS).ok());
        c.timer.set_value(handle);
    }

    /// The embedded rows, A first: (row ids, embeddings, split).
    fn concept_inputs(self) -> (Vec<usize>, Vec<Vec<f32>>, usize) {
        let b = self.concepts.b_rows.get_untracked();
        let embedded: Vec<(usize, Vec<f32>)> = self
            .embed
            .images
            .with_untracked(|rows| rows.iter().filter_map(|r| Some((r.id, r.result.with_untracked(|x| x.embed.clone())?))).collect());
        let (a, bs): (Vec<_>, Vec<_>) = embedded.into_iter().partition(|(id, _)| !b.contains(id));
        let split = a.len();
        let (ids, embeds) = a.into_iter().chain(bs).unzip();
        (ids, embeds, split)
    }

    pub fn decompose_now(self) {
        let c = self.concepts;
        if c.ready.get_untracked().is_none() {
            return;
        }
        let (rows, embeds, split) = self.concept_inputs();
        if rows.is_empty() {
            c.view.set(None);
            return;
        }
        if let Some((old, ..)) = c.pending.get_value() {
            self.cancel(old);
        }
        let l0 = c.l0.get_untracked();
        let job = self.jobs.open(JobKind::Concepts, &format!("decomposing {} image{}", rows.len(), if rows.len() == 1 { "" } else { "s" }));
        c.pending.set_value(Some((job, rows, split, l0)));
        self.link.send(ToWorker::Decompose { job, embeds, split, sparsity: Sparsity::TargetL0(l0) }, Vec::new());
    }

    pub fn decomposed(self, job: JobId, collection: CollectionDecomposition) {
        let c = self.concepts;
        let Some((pending, rows, split, l0)) = c.pending.get_value() else { return };
        if pending != job {
            return;
        }
        c.pending.set_value(None);
        c.view.set(Some(ConceptsView { rows, split, l0, collection }));
    }

    pub fn intervene(self, remove: Vec<String>, prompts: Vec<String>) {
        let (_, embeds, split) = self.concept_inputs();
        let embeds: Vec<Vec<f32>> = embeds.into_iter().take(split).collect();
        if embeds.is_empty() {
            return;
        }
        let l0 = self.concepts.l0.get_untracked();
        let job = self.jobs.open(JobKind::Concepts, "intervening");
        self.link.send(ToWorker::Intervene { job, embeds, sparsity: Sparsity::TargetL0(l0), remove, prompts }, Vec::new());
    }

    /// A model loaded: its dictionary must be made (or read from the cache)
    /// again. The same model in a new worker keeps the chosen list.
    pub fn concepts_model_changed(self, same_model: bool) {
        let c = self.concepts;
        c.ready.set(None);
        c.preparing.set_value(None);
        c.pending.set_value(None);
        if !same_model {
            c.view.set(None);
            c.choice.set(String::new());
            c.intervention.set(None);
        }
    }

    /// Sends a decomposition's recomposed embedding to the inversion studio
    /// as its target, and opens the studio.
    pub fn invert_concept_mix(self, name: String, vector: Vec<f32>) {
        self.inversion.target_vectors.set(vec![cliplens::protocol::NamedVector { name, vector }]);
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_hash(crate::route::Route::Invert.slug());
        }
    }

    /// Adds images as folder B.
    pub fn add_b_images(self, picked: Vec<(String, web_sys::File)>) {
        let first = self.embed.images.with_untracked(Vec::len);
        let ids: Vec<usize> = (first..first + picked.len()).collect();
        self.concepts.b_rows.update(|b| b.extend(ids));
        self.add_images(picked);
    }
}

/// The JSON export: `cliplens decompose --json`'s shape.
fn report(state: AppState, view: &ConceptsView) -> DecomposeReport {
    let names = state.embed.images.with_untracked(|rows| view.rows.iter().map(|&id| rows[id].name.clone()).collect::<Vec<_>>());
    DecomposeReport {
        model: state.models.model.get_untracked().map(|m| m.name).unwrap_or_default(),
        vocabulary: view.collection.vocabulary.clone(),
        image_mean: view.collection.image_mean.clone(),
        sparsity: sparsity_json(Sparsity::TargetL0(view.l0)),
        images: names
            .into_iter()
            .zip(&view.collection.results)
            .map(|(file, r)| ImageReport { file, concepts: r.concepts.clone(), cosine: r.cosine, lambda: r.lambda, l0: r.l0, objective: r.objective })
            .collect(),
        errors: Vec::new(),
        warnings: Vec::new(),
    }
}

#[component]
pub fn ConceptsPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let c = state.concepts;
    let remove_text = RwSignal::new(String::new());
    let prompt_text = RwSignal::new(String::new());

    // A dictionary for the loaded model as soon as there is one.
    Effect::new(move |_| {
        if state.models.model.get().is_some() && c.ready.get_untracked().is_none() && c.preparing.get_value().is_none() {
            state.prepare_concepts();
        }
    });
    // New embeddings (added images) are decomposed as they settle.
    Effect::new(move |_| {
        let embedded = state.embed.images.with(|rows| rows.iter().filter(|r| r.result.with(|x| x.embed.is_some())).count());
        let _ = c.b_rows.get();
        if embedded > 0 && c.ready.get_untracked().is_some() {
            state.decompose_soon();
        }
    });

    let on_custom = Callback::new(move |picked: Vec<(String, web_sys::File)>| {
        let Some((name, file)) = picked.into_iter().next() else { return };
        leptos::task::spawn_local(async move {
            let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await else {
                state.notice.set(Some(format!("{name}: could not be read")));
                return;
            };
            let text = text.as_string().unwrap_or_default();
            let words: Vec<String> = text.lines().map(str::to_string).collect();
            c.custom.set_value(Some((name, words)));
            c.choice.set("custom".into());
            state.prepare_concepts();
        });
    });
    let export_json = move |_| {
        let Some(view) = c.view.get_untracked() else { return };
        let json = serde_json::to_string_pretty(&report(state, &view)).unwrap_or_default();
        if let Err(e) = files::save("cliplens-concepts.json", "application/json", &json) {
            state.notice.set(Some(format!("could not save the JSON: {e:?}")));
        }
    };
    let export_csv = move |_| {
        let Some(view) = c.view.get_untracked() else { return };
        let r = report(state, &view);
        let names: Vec<String> = r.images.iter().map(|i| i.file.clone()).collect();
        if let Err(e) = files::save("cliplens-concepts.csv", "text/csv", &results_csv(&names, &r.images)) {
            state.notice.set(Some(format!("could not save the CSV: {e:?}")));
        }
    };
    let status = move || match (c.ready.get(), state.models.model.get()) {
        (_, None) => "waiting for a model".to_string(),
        (None, Some(_)) => "preparing the concept dictionary…".to_string(),
        (Some((v, cached)), Some(_)) => format!(
            "{} concepts from {}{}",
            v.size,
            v.source,
            if cached { " (dictionary from this browser's cache)" } else { " (dictionary encoded now, and cached)" }
        ),
    };
    let names = move |rows: &[usize]| state.embed.images.with(|all| rows.iter().map(|&id| all.get(id).map(|r| r.name.clone()).unwrap_or_default()).collect::<Vec<_>>());
    let thumbs = move |rows: &[usize]| {
        state.embed.images.with(|all| rows.iter().map(|&id| all.get(id).and_then(|r| r.result.with(|x| x.thumbnail.clone()))).collect::<Vec<_>>())
    };

    view! {
        <section class="concepts-controls inputs">
            <ImageDrop files_id="concept-files" folder_id="concept-folder" hint="The same images as Embed & compare. Read on this page, never uploaded.">
                <Picker label="compare with folder B…" id="concept-folder-b" folder=true on_pick=Callback::new(move |picked| state.add_b_images(picked))/>
                <button id="concept-clear" on:click=move |_| state.clear_images()>"Clear images"</button>
            </ImageDrop>
            <div class="concept-settings">
                <label for="concept-vocab">"Vocabulary"</label>
                <select id="concept-vocab" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    if v == "custom" && c.custom.get_value().is_none() {
                        return;
                    }
                    c.choice.set(v);
                    state.prepare_concepts();
                }>
                    {BuiltinVocabulary::ALL.into_iter().map(|v| view! {
                        <option value=v.name() selected=move || c.choice.get() == v.name()>{v.describe()}</option>
                    }).collect_view()}
                    <option value="custom" disabled=move || c.custom.with_value(Option::is_none) selected=move || c.choice.get() == "custom">
                        {move || c.custom.with_value(|x| x.as_ref().map(|(n, _)| format!("your list: {n}")).unwrap_or_else(|| "your list (load one)".into()))}
                    </option>
                </select>
                <Picker label="load your own list…" id="concept-vocab-file" single=true accept=".txt,text/plain" on_pick=on_custom/>
                <p id="concept-status" role="status" data-encodings=move || c.encodings.get()>{status}</p>
                <label for="concept-l0">{move || format!("At most {} concepts per image", c.l0.get())}</label>
                <input type="range" id="concept-l0" min=L0_MIN max=L0_MAX step="1" prop:value=move || c.l0.get().to_string()
                    on:input=move |ev| {
                        if let Ok(v) = event_target_value(&ev).parse::<usize>() {
                            c.l0.set(v.clamp(L0_MIN, L0_MAX));
                            state.decompose_soon();
                        }
                    }/>
                <p class="hint">"Fewer concepts read faster; more reconstruct the embedding better (the cosine)."</p>
            </div>
        </section>
        {move || c.view.with(Option::is_none).then(|| view! {
            <p class="hint" id="concept-empty">"Add images (or a folder) to see each one as a mix of words; add a second folder as B to see what changes from A to B."</p>
        })}
        {move || c.view.get().map(|view| {
            let split = view.split;
            let mean_cos = view.collection.results.iter().map(|r| r.cosine as f64).sum::<f64>() / view.collection.results.len().max(1) as f64;
            let mean_l0 = view.collection.results.iter().map(|r| r.l0 as f64).sum::<f64>() / view.collection.results.len().max(1) as f64;
            let summary = format!(
                "{} images, {:.1} concepts each on average, reconstruction cosine {:.3}, in {:.2} s. Image mean: {}.",
                view.collection.results.len(), mean_l0, mean_cos, view.collection.seconds, view.collection.image_mean.source
            );
            let max_share = view.collection.histogram.first().map_or(1.0, |h| h.share).max(1e-9);
            let histogram = view.collection.histogram.iter().take(SHOWN).cloned().collect::<Vec<_>>();
            view! {
                <section class="concept-collection">
                    <p id="concept-summary">{summary}</p>
                    <div class="toolbar">
                        <button id="concept-export-json" on:click=export_json>"Export JSON"</button>
                        <button id="concept-export-csv" on:click=export_csv>"Export CSV"</button>
                    </div>
                    <h2>{if view.collection.shifts.is_some() { "Folder A is made of" } else { "The collection is made of" }}</h2>
                    <ol class="concept-histogram" id="concept-histogram">
                        {histogram.into_iter().map(|h| {
                            let word = h.concept.clone();
                            let width = format!("{:.1}%", 100.0 * h.share / max_share);
                            view! {
                                <li>
                                    <button class="concept-word" on:click=move |_| c.search.set(Some(word.clone()))>{h.concept.clone()}</button>
                                    <span class="bar" style:width=width></span>
                                    <span class="count">{format!("{} of {} images", h.images, split)}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ol>
                    {view.collection.shifts.clone().map(|shifts| view! {
                        <h2>"From A to B"</h2>
                        <table class="concept-shifts" id="concept-shifts">
                            <thead><tr><th scope="col">"concept"</th><th scope="col">"images in A"</th><th scope="col">"images in B"</th><th scope="col">"mean weight B − A"</th></tr></thead>
                            <tbody>
                                {shifts.into_iter().take(SHOWN).map(|s| view! {
                                    <tr class=direction(s.weight_change)>
                                        <th scope="row">{format!("{} {}", if s.weight_change > 0.0 { "▲" } else { "▼" }, s.concept)}</th>
                                        <td>{format!("{} ({:.0}%)", s.images_a, 100.0 * s.share_a)}</td>
                                        <td>{format!("{} ({:.0}%)", s.images_b, 100.0 * s.share_b)}</td>
                                        <td>{format!("{:+.4}", s.weight_change)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    })}
                    <details class="intervention">
                        <summary>"Remove a concept and see zero-shot predictions change"</summary>
                        <label for="concept-remove">"Concepts to remove (comma-separated)"</label>
                        <input type="text" id="concept-remove" prop:value=move || remove_text.get() on:input=move |ev| remove_text.set(event_target_value(&ev))/>
                        <label for="concept-prompts">"Zero-shot classes, one prompt per line"</label>
                        <textarea id="concept-prompts" rows="3" prop:value=move || prompt_text.get() on:input=move |ev| prompt_text.set(event_target_value(&ev))></textarea>
                        <button id="concept-intervene" on:click=move |_| {
                            let remove = remove_text.get_untracked().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                            let prompts = prompt_text.get_untracked().lines().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                            state.intervene(remove, prompts);
                        }>"Compare predictions"</button>
                        {move || c.intervention.get().map(|i| view! {
                            <p>{format!("Removing {}: {} of {} predictions changed.", i.removed.join(", "), i.changed, i.before.len())}</p>
                            <table id="concept-intervention">
                                <thead><tr><th scope="col">"prompt"</th><th scope="col">"before"</th><th scope="col">"after"</th></tr></thead>
                                <tbody>{i.prompts.iter().enumerate().map(|(p, text)| view! {
                                    <tr><th scope="row">{text.clone()}</th><td>{i.count_before[p]}</td><td>{i.count_after[p]}</td></tr>
                                }).collect_view()}</tbody>
                            </table>
                        })}
                    </details>
                </section>
                <ImageCards view=view.clone() names=names(&view.rows) thumbs=thumbs(&view.rows)/>
            }
        })}
    }
}

fn direction(change: f64) -> &'static str {
    if change > 0.0 { "rise" } else { "fall" }
}

/// One card per image: its preview, its concepts as bars, its cosine.
#[component]
fn ImageCards(view: ConceptsView, names: Vec<String>, thumbs: Vec<Option<String>>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let c = state.concepts;
    let concepts_of: Vec<Vec<cliplens::concepts::ConceptWeight>> = view.collection.results.iter().map(|r| r.concepts.clone()).collect();
    let count = names.len();
    let order = move || match c.search.get() {
        Some(word) => rank_by_concept(&concepts_of, &word).into_iter().map(|(i, _)| i).collect::<Vec<_>>(),
        None => (0..count).collect(),
    };
    let total = view.collection.results.len();
    // Cards are drawn a page at a time: a folder of thousands would
    // otherwise stall the page while it builds every chart at once.
    let limit = c.cards_shown;
    let cards = move || {
        let order = order();
        let shown = order.len();
        let hidden = shown.saturating_sub(limit.get());
        let header = c.search.get().map(|word| view! {
            <p class="search-line">{format!("{shown} of {total} images carry \u{201c}{word}\u{201d}, strongest first. ")}
                <button on:click=move |_| c.search.set(None)>"Show all"</button></p>
        });
        let cards = order.into_iter().take(limit.get()).map(|i| {
            let r = view.collection.results[i].clone();
            let max = r.concepts.first().map_or(1.0, |x| x.weight).max(1e-9);
            let folder = if i >= view.split { " (B)" } else { "" };
            view! {
                <article class="concept-card" data-index=i>
                    {thumbs[i].clone().map(|src| view! { <img src=src alt="" width="64" height="64"/> })}
                    <h3>{format!("{}{folder}", names[i])}</h3>
                    <p class="hint">{format!("{} concepts, cosine {:.3}", r.l0, r.cosine)}</p>
                    <button class="invert-mix" aria-label=format!("Invert this mix ({})", names[i]) on:click={
                        let name = format!("concept mix of {}", cliplens::invert::target::file_label(&names[i]));
                        let vector = r.recomposed.clone();
                        move |_| state.invert_concept_mix(name.clone(), vector.clone())
                    }>"Invert this mix"</button>
                    <ul class="concept-bars">
                        {r.concepts.iter().take(SHOWN).map(|w| {
                            let word = w.concept.clone();
                            // Through the CSSOM (`style:`), which the CSP allows, not a style attribute.
                            let width = format!("{:.1}%", 100.0 * w.weight / max);
                            view! {
                                <li>
                                    <button class="concept-word" on:click=move |_| c.search.set(Some(word.clone()))>{w.concept.clone()}</button>
                                    <span class="bar" style:width=width></span>
                                    <span class="weight">{format!("{:.3}", w.weight)}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </article>
            }
        }).collect_view();
        let more = (hidden > 0).then(|| view! {
            <button id="concept-more" on:click=move |_| limit.update(|l| *l += CARDS_PER_PAGE)>
                {format!("show {} more ({hidden} not shown)", hidden.min(CARDS_PER_PAGE))}
            </button>
        });
        view! { {header} <div class="concept-cards">{cards}</div> {more} }
    };
    view! { <section class="concept-images" aria-label="decompositions">{cards}</section> }
}
