//! Embed & compare: add images (files, folders, drops) and prompts; see the
//! cosine heat-map or zero-shot probabilities, sort by a prompt, export.

use cliplens::clip::{EmbedReport, cosine_matrix};
use cliplens::compare::{best, heat, order_by, similarity_csv, softmax_rows};
use leptos::prelude::*;

use crate::files;
use crate::link::{AppState, ImageRow};

/// The table as both exports see it: only images and prompts that embedded.
struct Table {
    images: Vec<ImageRow>,
    texts: Vec<String>,
    text_embeds: Vec<Vec<f32>>,
    similarity: Vec<Vec<f32>>,
    logit_scale: f32,
}

fn table(state: AppState) -> Table {
    let images: Vec<ImageRow> = state.images.get().into_iter().filter(|r| r.embed.is_some()).collect();
    let (texts, text_embeds): (Vec<String>, Vec<Vec<f32>>) =
        state.texts.get().into_iter().filter_map(|t| Some((t.name, t.embed?))).unzip();
    let image_embeds: Vec<Vec<f32>> = images.iter().filter_map(|r| r.embed.clone()).collect();
    let similarity = cosine_matrix(&image_embeds, &text_embeds);
    let logit_scale = state.model.get().map(|m| m.logit_scale).unwrap_or(100.0);
    Table { images, texts, text_embeds, similarity, logit_scale }
}

#[component]
pub fn EmbedPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let prompt_text = RwSignal::new("a photo of a red figure\na photo of a blue figure\na photo of a green figure".to_string());
    let show_probability = RwSignal::new(false);
    // (prompt column, descending); None keeps the order images were added in.
    let sort = RwSignal::new(None::<(usize, bool)>);
    let dragging = RwSignal::new(false);

    let compare = move || {
        let texts: Vec<String> = prompt_text.get_untracked().lines().map(str::to_string).collect();
        // Blank lines are layout, not prompts; a prompt of spaces gets its own message.
        let texts: Vec<String> = texts.into_iter().filter(|t| !t.is_empty()).collect();
        state.embed_texts(texts);
    };
    // The default prompts are compared as soon as a model is there.
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        if state.model.get().is_some() {
            compare();
            return true;
        }
        false
    });

    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let Some(transfer) = ev.data_transfer() else { return };
        let (entries, loose) = files::dropped_entries(&transfer);
        state.add_images(loose);
        if !entries.is_empty() {
            leptos::task::spawn_local(async move { state.add_images(files::walk(entries).await) });
        }
    };

    let export_csv = move |_| {
        let t = table(state);
        let names: Vec<String> = t.images.iter().map(|r| r.name.clone()).collect();
        let csv = similarity_csv(&names, &t.texts, &t.similarity, t.logit_scale);
        if let Err(e) = files::save("cliplens-similarity.csv", "text/csv", &csv) {
            state.notice.set(Some(format!("could not save the CSV: {e:?}")));
        }
    };
    let export_json = move |_| {
        let t = table(state);
        let errors = state
            .images
            .get_untracked()
            .into_iter()
            .filter_map(|r| r.error)
            .chain(state.texts.get_untracked().into_iter().filter_map(|t| t.error))
            .collect();
        let warnings = state.texts.get_untracked().into_iter().filter_map(|t| t.warning).collect();
        let report = EmbedReport {
            model: state.model.get_untracked().map(|m| m.name).unwrap_or_default(),
            images: t.images.iter().map(|r| r.name.clone()).collect(),
            texts: t.texts,
            image_embeds: t.images.iter().filter_map(|r| r.embed.clone()).collect(),
            text_embeds: t.text_embeds,
            similarity: t.similarity,
            logit_scale: t.logit_scale,
            errors,
            warnings,
        };
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = files::save("cliplens-similarity.json", "application/json", &json) {
            state.notice.set(Some(format!("could not save the JSON: {e:?}")));
        }
    };

    view! {
        <section class="inputs">
            <div class="drop" class:dragging=move || dragging.get()
                on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop>
                <p>"Drop images or folders here, or"</p>
                <label class="button">"choose images…"
                    <input type="file" id="image-files" multiple accept="image/*" hidden on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        state.add_images(files::from_list(input.files()));
                        input.set_value("");
                    }/>
                </label>
                <label class="button">"choose a folder…"
                    <input type="file" id="image-folder" prop:webkitdirectory=true multiple hidden on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        state.add_images(files::from_list(input.files()));
                        input.set_value("");
                    }/>
                </label>
                <p class="hint">"Images are read on this page and never uploaded."</p>
            </div>
            <div class="prompts">
                <label for="prompts">"Prompts, one per line"</label>
                <textarea id="prompts" rows="5" prop:value=move || prompt_text.get()
                    on:input=move |ev| prompt_text.set(event_target_value(&ev))></textarea>
                <button id="compare" on:click=move |_| compare()>"Compare"</button>
            </div>
        </section>
        <section class="results">
            <div class="toolbar">
                <label><input type="checkbox" id="show-probability" prop:checked=move || show_probability.get()
                    on:change=move |ev| show_probability.set(event_target_checked(&ev))/>
                    " zero-shot probabilities (softmax over the prompts)"</label>
                <button id="export-csv" on:click=export_csv>"Export CSV"</button>
                <button id="export-json" on:click=export_json>"Export JSON"</button>
                <button id="clear" on:click=move |_| state.clear_images()>"Clear images"</button>
                <span id="counts">{move || {
                    let rows = state.images.get();
                    let done = rows.iter().filter(|r| r.embed.is_some()).count();
                    let failed = rows.iter().filter(|r| r.error.is_some()).count();
                    let cancelled = rows.iter().filter(|r| r.cancelled).count();
                    let noun = if rows.len() == 1 { "image" } else { "images" };
                    let rest = if cancelled > 0 { format!(", {cancelled} cancelled") } else { String::new() };
                    format!("{} {noun}: {done} embedded, {failed} could not be read{rest}", rows.len())
                }}</span>
                {move || state.images.get().iter().any(|r| r.cancelled).then(|| view! {
                    <button id="resume" on:click=move |_| state.resume()>"Resume"</button>
                })}
            </div>
            <PromptProblems/>
            <ResultsTable show_probability sort/>
        </section>
    }
}

/// Per-prompt messages (empty prompts, truncation).
#[component]
fn PromptProblems() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <ul class="problems">
            {move || state.texts.get().into_iter().filter_map(|t| {
                let line = t.error.or(t.warning)?;
                Some(view! { <li class="prompt-problem">{line}</li> })
            }).collect_view()}
        </ul>
    }
}

/// Rows the table draws at first, and per "show more": every result
/// re-renders the table, and thousands of rows would stall the page.
const ROWS_PER_PAGE: usize = 200;

#[component]
fn ResultsTable(show_probability: RwSignal<bool>, sort: RwSignal<Option<(usize, bool)>>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let shown = RwSignal::new(ROWS_PER_PAGE);
    // Values per row, in the order rows were added: cosine or probability, per prompt.
    let grid = Memo::new(move |_| {
        let rows = state.images.get();
        let texts: Vec<Vec<f32>> = state.texts.get().into_iter().filter_map(|t| t.embed).collect();
        let scale = state.model.get().map(|m| m.logit_scale).unwrap_or(100.0);
        let values: Vec<Option<Vec<f32>>> = rows
            .iter()
            .map(|r| {
                let e = r.embed.as_ref()?;
                let cos = cosine_matrix(std::slice::from_ref(e), &texts).pop()?;
                Some(if show_probability.get() { softmax_rows(&[cos], scale).pop()? } else { cos })
            })
            .collect();
        values
    });
    // A memo: the rows and the "show more" line both read it.
    let order = Memo::new(move |_| {
        let values = grid.get();
        match sort.get() {
            Some((col, desc)) => order_by(&values.iter().map(|v| v.as_ref().and_then(|v| v.get(col).copied())).collect::<Vec<_>>(), desc),
            None => (0..values.len()).collect::<Vec<usize>>(),
        }
    });
    let headers = move || {
        state.texts.get().into_iter().filter(|t| t.embed.is_some()).enumerate().map(|(j, t)| {
            let arrow = move || match sort.get() {
                Some((c, true)) if c == j => " ▼",
                Some((c, false)) if c == j => " ▲",
                _ => "",
            };
            view! {
                <th class="prompt" title="sort by this prompt" on:click=move |_| sort.update(|s| {
                    *s = match *s { Some((c, true)) if c == j => Some((j, false)), _ => Some((j, true)) };
                })>{t.name.clone()}{arrow}</th>
            }
        }).collect_view()
    };
    view! {
        <table id="similarity">
            <thead><tr><th>"image"</th>{headers}<th>"best prompt"</th></tr></thead>
            <tbody>
                {move || {
                    let rows = state.images.get();
                    let values = grid.get();
                    let texts: Vec<String> = state.texts.get().into_iter().filter(|t| t.embed.is_some()).map(|t| t.name).collect();
                    let (lo, hi) = if show_probability.get() { (0.0, 1.0) } else {
                        values.iter().flatten().flatten().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)))
                    };
                    // The first rows in order, and every row with a message (few, and never to be missed).
                    let limit = shown.get();
                    order.get().into_iter().enumerate().filter(|&(k, i)| k < limit || rows[i].error.is_some()).map(|(_, i)| {
                        let row = rows[i].clone();
                        let cells = values[i].clone();
                        let best_text = cells.as_deref().and_then(best).map(|j| texts[j].clone()).unwrap_or_default();
                        view! {
                            <tr data-name=row.name.clone() class:failed=row.error.is_some()>
                                <td class="image">
                                    {row.thumbnail.clone().map(|src| view! { <img src=src alt=""/> })}
                                    <span class="name">{row.name.clone()}</span>
                                    {row.error.clone().map(|e| view! { <div class="item-error">{e}</div> })}
                                </td>
                                {match cells {
                                    Some(cells) => cells.into_iter().map(|v| {
                                        let shade = heat(v, lo, hi);
                                        // Set through the CSSOM (`style:`), which the CSP allows, not a style attribute.
                                        let colour = format!("rgba(214, 93, 14, {:.3})", 0.08 + 0.8 * shade);
                                        view! { <td class="value" data-value=format!("{v:.6}") style:background-color=colour>{format!("{v:.3}")}</td> }
                                    }).collect_view().into_any(),
                                    None => view! { <td class="pending" colspan=texts.len().max(1)>{if row.error.is_some() { "" } else if row.cancelled { "cancelled" } else { "…" }}</td> }.into_any(),
                                }}
                                <td class="best">{best_text}</td>
                            </tr>
                        }
                    }).collect_view()
                }}
            </tbody>
        </table>
        {move || {
            let limit = shown.get();
            let hidden = state.images.with(|rows| order.with(|order| order.iter().skip(limit).filter(|&&i| rows[i].error.is_none()).count()));
            (hidden > 0).then(|| view! {
                <p class="more">
                    {format!("{hidden} more rows not drawn (the exports hold them all) ")}
                    <button id="show-more" on:click=move |_| shown.update(|n| *n += ROWS_PER_PAGE)>{format!("show {} more", hidden.min(ROWS_PER_PAGE))}</button>
                </p>
            })
        }}
    }
}
