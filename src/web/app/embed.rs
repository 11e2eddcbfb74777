//! Embed & compare: add images (files, folders, drops) and prompts; see the
//! cosine heat-map or zero-shot probabilities, sort by a prompt, export. The
//! state keeps one signal per image row, so a result redraws its own row.

use cliplens::clip::{EmbedReport, cosine_matrix};
use cliplens::compare::{best, heat, order_by, similarity_csv, softmax_rows};
use cliplens::protocol::{ItemResult, JobId, Thumbnail, ToWorker};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::File;

use crate::app::AppState;
use crate::files::{self, Picker};
use crate::jobs::JobKind;

/// Images per forward pass (as the CLI does).
const BATCH: usize = 16;
/// Files per message to the worker (about 25 ms of the page's time each).
const FILES_PER_MESSAGE: usize = 48;

/// What is known of one image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowResult {
    /// `data:` URL of the model's-eye preview, once embedded.
    pub thumbnail: Option<String>,
    pub embed: Option<Vec<f32>>,
    pub error: Option<String>,
    /// Its job was cancelled before it was embedded; "Resume" embeds it.
    pub cancelled: bool,
    /// The embedding was computed before (this browser's cache).
    pub from_cache: bool,
}

impl RowResult {
    fn unfinished(&self) -> bool {
        self.embed.is_none() && self.error.is_none() && !self.cancelled
    }
}

/// One image the user added; `id` is its index in the table. `result` is
/// reference-counted, not owned by a component: rows outlive the page that
/// added them (navigating away disposes that page's signals).
#[derive(Clone, Debug)]
pub struct ImageRow {
    pub id: usize,
    pub name: String,
    pub result: ArcRwSignal<RowResult>,
}

#[derive(Clone, Copy)]
pub struct Embed {
    pub images: RwSignal<Vec<ImageRow>>,
    pub texts: RwSignal<Vec<ItemResult>>,
    /// The picked files, by row id (JS handles: read only by the worker).
    files: StoredValue<Vec<File>, LocalStorage>,
    /// Which row each position of a running image job's file list is.
    image_jobs: StoredValue<Vec<(JobId, Vec<usize>)>>,
    /// Results waiting for the next table update: (row id, result, preview URL).
    updates: StoredValue<Vec<(usize, ItemResult, Option<String>)>>,
    /// Rows that were in a batch when the worker crashed: embedded one at a
    /// time next, so a second crash names the image that causes it.
    suspects: StoredValue<Vec<usize>>,
}

impl Embed {
    pub fn new() -> Self {
        Embed {
            images: RwSignal::new(Vec::new()),
            texts: RwSignal::new(Vec::new()),
            files: StoredValue::new_local(Vec::new()),
            image_jobs: StoredValue::new(Vec::new()),
            updates: StoredValue::new(Vec::new()),
            suspects: StoredValue::new(Vec::new()),
        }
    }

    fn rows_of(self, job: JobId) -> Option<Vec<usize>> {
        self.image_jobs.with_value(|j| j.iter().find(|(x, _)| *x == job).map(|(_, ids)| ids.clone()))
    }

    pub fn forget_job(self, job: JobId) {
        self.image_jobs.update_value(|j| j.retain(|(x, _)| *x != job));
    }

    /// The worker crashed while it held `items` of image job `job`: one
    /// item is the cause and gets the message; several become suspects.
    pub fn crashed_on(self, job: JobId, items: &[usize], what: &str) {
        let Some(ids) = self.rows_of(job) else { return };
        let rows: Vec<usize> = items.iter().filter_map(|&i| ids.get(i).copied()).collect();
        match rows.as_slice() {
            [] => {}
            [one] => self.images.with_untracked(|all| {
                if let Some(row) = all.get(*one) {
                    let message = format!("{}: skipped: {what}", row.name);
                    row.result.update(|r| {
                        r.error = Some(message);
                        r.embed = None;
                    });
                }
            }),
            several => self.suspects.update_value(|s| s.extend_from_slice(several)),
        }
    }
}

impl AppState {
    /// Adds images to the table and queues them for embedding.
    pub fn add_images(self, picked: Vec<(String, File)>) {
        if picked.is_empty() {
            return;
        }
        let first = self.embed.files.with_value(Vec::len);
        let ids: Vec<usize> = (first..first + picked.len()).collect();
        self.embed.images.update(|rows| {
            rows.extend(picked.iter().zip(&ids).map(|((name, _), &id)| ImageRow { id, name: name.clone(), result: ArcRwSignal::new(RowResult::default()) }))
        });
        self.embed.files.update_value(|f| f.extend(picked.into_iter().map(|(_, file)| file)));
        self.embed_rows(ids, BATCH);
    }

    /// [`Self::add_images`] in a task of its own: the browser makes the File
    /// objects of a big folder in the task that reports the pick (over 100 ms
    /// for 500 files), and the page's work should not lengthen that stall.
    pub fn add_images_soon(self, picked: Vec<(String, File)>) {
        let later = Closure::once_into_js(move || self.add_images(picked));
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(later.unchecked_ref(), 0);
        }
    }

    /// (Re-)embeds the given rows with the current model, `batch` per pass.
    pub fn embed_rows(self, ids: Vec<usize>, batch: usize) {
        if ids.is_empty() {
            return;
        }
        let (names, files): (Vec<String>, Vec<File>) = self.embed.images.with_untracked(|rows| {
            self.embed.files.with_value(|all| {
                ids.iter()
                    .map(|&id| {
                        rows[id].result.update(|r| r.cancelled = false);
                        (rows[id].name.clone(), all[id].clone())
                    })
                    .unzip()
            })
        });
        let count = ids.len();
        let job = self.jobs.open(JobKind::EmbedImages, &format!("embedding {count} image{}", if count == 1 { "" } else { "s" }));
        self.embed.image_jobs.update_value(|j| j.push((job, ids)));
        // Files go a few dozen per message, each in its own task: cloning
        // hundreds of File handles into one message blocks the page.
        let mut chunks: Vec<Vec<File>> = files.chunks(FILES_PER_MESSAGE).map(<[File]>::to_vec).collect();
        let first = if chunks.is_empty() { Vec::new() } else { chunks.remove(0) };
        self.link.send(ToWorker::EmbedImages { job, names, batch }, first);
        self.send_files_later(job, FILES_PER_MESSAGE, chunks);
    }

    /// Sends `chunks` (the files of `job` from file number `from` on) one per task.
    fn send_files_later(self, job: JobId, from: usize, mut chunks: Vec<Vec<File>>) {
        if chunks.is_empty() {
            return;
        }
        let next = Closure::once_into_js(move || {
            let chunk = chunks.remove(0);
            let count = chunk.len();
            self.link.send(ToWorker::ImageFiles { job, from }, chunk);
            self.send_files_later(job, from + count, chunks);
        });
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(next.unchecked_ref(), 0);
        }
    }

    pub fn embed_texts(self, texts: Vec<String>) {
        let job = self.jobs.open(JobKind::EmbedTexts, "embedding prompts");
        self.link.send(ToWorker::EmbedTexts { job, texts }, Vec::new());
    }

    pub fn clear_images(self) {
        for job in self.jobs.of_kind(JobKind::EmbedImages) {
            self.cancel(job);
        }
        self.embed.images.set(Vec::new());
        self.embed.files.update_value(Vec::clear);
        // Late results of the cancelled jobs must not land on new rows with the same ids.
        self.embed.image_jobs.update_value(Vec::clear);
        self.embed.updates.update_value(Vec::clear);
        self.embed.suspects.update_value(Vec::clear);
        // Row ids start again from 0: folder B's and the decompositions' ids are void.
        self.concepts.b_rows.set(Vec::new());
        self.concepts.view.set(None);
        self.concepts.cards_shown.set(crate::concepts::CARDS_PER_PAGE);
    }

    pub fn image_embedded(self, job: JobId, index: usize, result: ItemResult, thumbnail: Option<Thumbnail>) {
        let Some(id) = self.embed.rows_of(job).and_then(|ids| ids.get(index).copied()) else { return };
        let url = thumbnail.and_then(|t| files::thumbnail_url(&t));
        let first = self.embed.updates.try_update_value(|u| {
            u.push((id, result, url));
            u.len() == 1
        });
        if first == Some(true) {
            self.flush_rows_soon();
        }
    }

    /// Applies queued image results together, at most every 100 ms.
    fn flush_rows_soon(self) {
        let embed = self.embed;
        let flush = Closure::once_into_js(move || {
            let updates = embed.updates.try_update_value(std::mem::take).unwrap_or_default();
            embed.images.with_untracked(|rows| {
                for (id, result, url) in updates {
                    if let Some(row) = rows.get(id) {
                        row.result.update(|r| {
                            r.embed = result.embed;
                            r.error = result.error;
                            r.cancelled = false;
                            r.from_cache = result.from_cache;
                            if url.is_some() {
                                r.thumbnail = url;
                            }
                        });
                    }
                }
            });
        });
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(flush.unchecked_ref(), 100);
        }
    }

    /// Rows of a cancelled image job that got no result show as cancelled
    /// (not as forever "…"), ready for Resume.
    pub fn embed_cancelled(self, job: JobId) {
        let Some(ids) = self.embed.rows_of(job) else { return };
        self.embed.images.with_untracked(|rows| {
            for id in ids {
                if let Some(row) = rows.get(id) {
                    row.result.update(|r| {
                        if r.embed.is_none() && r.error.is_none() {
                            r.cancelled = true;
                        }
                    });
                }
            }
        });
    }

    /// Embeds the rows a cancel left out.
    pub fn resume(self) {
        let ids: Vec<usize> = self.embed.images.with_untracked(|rows| rows.iter().filter(|r| r.result.with_untracked(|x| x.cancelled)).map(|r| r.id).collect());
        self.embed_rows(ids, BATCH);
    }

    /// A new model: every result so far belongs to the old one.
    pub fn reembed_everything(self) {
        let ids: Vec<usize> = self.embed.images.with_untracked(|rows| {
            rows.iter().for_each(|r| r.result.update(|x| x.embed = None));
            rows.iter().filter(|r| r.result.with_untracked(|x| x.error.is_none())).map(|r| r.id).collect()
        });
        let texts: Vec<String> = self.embed.texts.get_untracked().into_iter().map(|t| t.name).collect();
        self.embed.texts.set(Vec::new());
        if !texts.is_empty() {
            self.embed_texts(texts);
        }
        self.embed.suspects.update_value(Vec::clear);
        self.embed_rows(ids, BATCH);
    }

    /// The same model in a new worker: only what has no result yet is sent,
    /// the suspects of a crash one at a time.
    pub fn embed_unfinished(self) {
        let suspects = self.embed.suspects.try_update_value(std::mem::take).unwrap_or_default();
        let unfinished: Vec<usize> =
            self.embed.images.with_untracked(|rows| rows.iter().filter(|r| r.result.with_untracked(RowResult::unfinished)).map(|r| r.id).collect());
        let (alone, rest): (Vec<usize>, Vec<usize>) = unfinished.into_iter().partition(|id| suspects.contains(id));
        if self.embed.texts.with_untracked(|t| t.iter().any(|t| t.embed.is_none() && t.error.is_none())) {
            let texts: Vec<String> = self.embed.texts.get_untracked().into_iter().map(|t| t.name).collect();
            self.embed_texts(texts);
        }
        self.embed_rows(alone, 1);
        self.embed_rows(rest, BATCH);
    }
}

/// The table as both exports see it: only images and prompts that embedded.
struct Table {
    names: Vec<String>,
    image_embeds: Vec<Vec<f32>>,
    texts: Vec<String>,
    text_embeds: Vec<Vec<f32>>,
    similarity: Vec<Vec<f32>>,
    logit_scale: f32,
}

fn table(state: AppState) -> Table {
    let (names, image_embeds): (Vec<String>, Vec<Vec<f32>>) = state
        .embed
        .images
        .with_untracked(|rows| rows.iter().filter_map(|r| Some((r.name.clone(), r.result.with_untracked(|x| x.embed.clone())?))).unzip());
    let (texts, text_embeds): (Vec<String>, Vec<Vec<f32>>) = state.embed.texts.get_untracked().into_iter().filter_map(|t| Some((t.name, t.embed?))).unzip();
    let similarity = cosine_matrix(&image_embeds, &text_embeds);
    let logit_scale = state.models.model.get_untracked().map(|m| m.logit_scale).unwrap_or(100.0);
    Table { names, image_embeds, texts, text_embeds, similarity, logit_scale }
}

/// Where the page's images come in: a drop zone (files or whole folders)
/// with a files picker and a folder picker; `children` adds controls.
#[component]
pub fn ImageDrop(files_id: &'static str, folder_id: &'static str, hint: &'static str, children: Children) -> impl IntoView {
    let state = expect_context::<AppState>();
    let dragging = RwSignal::new(false);
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let Some(transfer) = ev.data_transfer() else { return };
        let (entries, loose) = files::dropped_entries(&transfer);
        state.add_images_soon(loose);
        if !entries.is_empty() {
            leptos::task::spawn_local(async move { state.add_images(files::walk(entries).await) });
        }
    };
    let add = Callback::new(move |picked| state.add_images_soon(picked));
    view! {
        <div class="drop" class:dragging=move || dragging.get()
            on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop>
            <p>"Drop images or folders here, or"</p>
            <Picker label="choose images…" id=files_id accept="image/*" on_pick=add/>
            <Picker label="choose a folder…" id=folder_id folder=true on_pick=add/>
            {children()}
            <p class="hint">{hint}</p>
        </div>
    }
}

#[component]
pub fn EmbedPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let embed = state.embed;
    let prompt_text = RwSignal::new("a photo of a red figure\na photo of a blue figure\na photo of a green figure".to_string());
    let show_probability = RwSignal::new(false);
    // (prompt column, descending); None keeps the order images were added in.
    let sort = RwSignal::new(None::<(usize, bool)>);

    let compare = move || {
        // Blank lines are layout, not prompts; a prompt of spaces gets its own message.
        let texts: Vec<String> = prompt_text.get_untracked().lines().filter(|t| !t.is_empty()).map(str::to_string).collect();
        state.embed_texts(texts);
    };
    // The default prompts are compared as soon as a model is there.
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        if state.models.model.get().is_some() {
            if embed.texts.with_untracked(Vec::is_empty) {
                compare();
            }
            return true;
        }
        false
    });

    let export_csv = move |_| {
        let t = table(state);
        let csv = similarity_csv(&t.names, &t.texts, &t.similarity, t.logit_scale);
        if let Err(e) = files::save("cliplens-similarity.csv", "text/csv", &csv) {
            state.notice.set(Some(format!("could not save the CSV: {e:?}")));
        }
    };
    let export_json = move |_| {
        let t = table(state);
        let errors = embed
            .images
            .with_untracked(|rows| rows.iter().filter_map(|r| r.result.with_untracked(|x| x.error.clone())).collect::<Vec<_>>())
            .into_iter()
            .chain(embed.texts.get_untracked().into_iter().filter_map(|t| t.error))
            .collect();
        let warnings = embed.texts.get_untracked().into_iter().filter_map(|t| t.warning).collect();
        let report = EmbedReport {
            model: state.models.model.get_untracked().map(|m| m.name).unwrap_or_default(),
            images: t.names,
            texts: t.texts,
            image_embeds: t.image_embeds,
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
    let counts = move || {
        let (total, done, failed, cancelled, cached) = embed.images.with(|rows| {
            rows.iter().fold((rows.len(), 0, 0, 0, 0), |(n, d, f, c, k), r| {
                r.result.with(|x| {
                    (n, d + x.embed.is_some() as usize, f + x.error.is_some() as usize, c + x.cancelled as usize, k + (x.from_cache && x.embed.is_some()) as usize)
                })
            })
        });
        let noun = if total == 1 { "image" } else { "images" };
        let rest = if cancelled > 0 { format!(", {cancelled} cancelled") } else { String::new() };
        let cached = if cached > 0 { format!("; {cached} of them done before (this browser's cache)") } else { String::new() };
        format!("{total} {noun}: {done} embedded, {failed} could not be read{rest}{cached}")
    };
    let any_cancelled = move || embed.images.with(|rows| rows.iter().any(|r| r.result.with(|x| x.cancelled)));

    view! {
        <section class="inputs">
            <ImageDrop files_id="image-files" folder_id="image-folder" hint="Images are read on this page and never uploaded.">{()}</ImageDrop>
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
                <span id="counts" role="status">{counts}</span>
                {move || any_cancelled().then(|| view! {
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
            {move || state.embed.texts.get().into_iter().filter_map(|t| {
                let line = t.error.or(t.warning)?;
                Some(view! { <li class="prompt-problem">{line}</li> })
            }).collect_view()}
        </ul>
    }
}

/// Rows the table draws at first, and per "show more": a 10,000-image folder
/// would otherwise put 10,000 rows in the page.
const ROWS_PER_PAGE: usize = 200;
/// Rows added to the page per animation frame: drawing 200 rows (and laying
/// them out) at once would hold the page for a tenth of a second.
const ROWS_PER_FRAME: usize = 40;

/// A row's values: cosine or probability per prompt, once embedded.
fn row_values(result: &RowResult, texts: &[Vec<f32>], probability: bool, scale: f32) -> Option<Vec<f32>> {
    let e = result.embed.as_ref()?;
    let cos = cosine_matrix(std::slice::from_ref(e), texts).pop()?;
    Some(if probability { softmax_rows(&[cos], scale).pop()? } else { cos })
}

#[component]
fn ResultsTable(show_probability: RwSignal<bool>, sort: RwSignal<Option<(usize, bool)>>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let embed = state.embed;
    let shown = RwSignal::new(ROWS_PER_PAGE);
    let text_embeds = Memo::new(move |_| embed.texts.with(|t| t.iter().filter_map(|t| t.embed.clone()).collect::<Vec<_>>()));
    let text_names = Memo::new(move |_| embed.texts.with(|t| t.iter().filter(|t| t.embed.is_some()).map(|t| t.name.clone()).collect::<Vec<_>>()));
    let scale = Memo::new(move |_| state.models.model.with(|m| m.as_ref().map(|m| m.logit_scale).unwrap_or(100.0)));
    // Every row's values, for sorting and the heat-map's range.
    let values = Memo::new(move |_| {
        let probability = show_probability.get();
        text_embeds.with(|texts| {
            embed.images.with(|rows| rows.iter().map(|r| r.result.with(|x| row_values(x, texts, probability, scale.get()))).collect::<Vec<_>>())
        })
    });
    let range = Memo::new(move |_| {
        if show_probability.get() {
            return (0.0, 1.0);
        }
        values.with(|v| v.iter().flatten().flatten().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x))))
    });
    // Row ids in table order: the first page, and every row with a message.
    let order = Memo::new(move |_| {
        let limit = shown.get();
        let sorted = values.with(|v| match sort.get() {
            Some((col, desc)) => order_by(&v.iter().map(|v| v.as_ref().and_then(|v| v.get(col).copied())).collect::<Vec<_>>(), desc),
            None => (0..v.len()).collect::<Vec<usize>>(),
        });
        embed.images.with(|rows| {
            sorted.into_iter().enumerate().filter(|&(k, i)| k < limit || rows[i].result.with(|x| x.error.is_some())).map(|(_, i)| i).collect::<Vec<_>>()
        })
    });
    // How many of `order`'s rows are in the page: grows a frame at a time.
    let drawn = RwSignal::new(0usize);
    Effect::new(move |_| {
        let target = order.with(Vec::len);
        let now = drawn.get();
        if now > target {
            drawn.set(target);
        } else if now < target {
            let next = Closure::once_into_js(move || drawn.set((now + ROWS_PER_FRAME).min(order.with_untracked(Vec::len))));
            if let Some(window) = web_sys::window() {
                let _ = window.request_animation_frame(next.unchecked_ref());
            }
        }
    });
    let headers = move || {
        text_names.get().into_iter().enumerate().map(|(j, name)| {
            let arrow = move || match sort.get() {
                Some((c, true)) if c == j => " ▼",
                Some((c, false)) if c == j => " ▲",
                _ => "",
            };
            // A button in the header cell: reachable by Tab, pressed by Enter
            // or Space, and the cell tells screen readers the order.
            let order = move || match sort.get() {
                Some((c, true)) if c == j => "descending",
                Some((c, false)) if c == j => "ascending",
                _ => "none",
            };
            let label = format!("sort by \"{name}\"");
            view! {
                <th class="prompt" aria-sort=order>
                    <button class="sort" aria-label=label on:click=move |_| sort.update(|s| {
                        *s = match *s { Some((c, true)) if c == j => Some((j, false)), _ => Some((j, true)) };
                    })>{name}{arrow}</button>
                </th>
            }
        }).collect_view()
    };
    view! {
        <table id="similarity">
            <thead><tr><th>"image"</th>{headers}<th>"best prompt"</th></tr></thead>
            <tbody>
                <For each=move || order.with(|o| o.iter().take(drawn.get()).copied().collect::<Vec<_>>()) key=|id| *id children=move |id: usize| {
                    let Some(row) = embed.images.with_untracked(|rows| rows.get(id).cloned()) else { return ().into_any() };
                    let result = row.result.clone();
                    let (result2, result3, result4) = (result.clone(), result.clone(), result.clone());
                    let cells = move || {
                        let values = values.with(|v| v.get(id).cloned().flatten());
                        let (lo, hi) = range.get();
                        let columns = text_names.with(Vec::len).max(1);
                        match values {
                            Some(cells) => cells.into_iter().map(|v| {
                                let shade = heat(v, lo, hi);
                                // Set through the CSSOM (`style:`), which the CSP allows, not a style attribute.
                                let colour = format!("rgba(214, 93, 14, {:.3})", 0.08 + 0.8 * shade);
                                view! { <td class="value" data-value=format!("{v:.6}") style:background-color=colour>{format!("{v:.3}")}</td> }
                            }).collect_view().into_any(),
                            None => {
                                let text = result2.with(|r| if r.error.is_some() { "" } else if r.cancelled { "cancelled" } else { "…" });
                                view! { <td class="pending" colspan=columns>{text}</td> }.into_any()
                            }
                        }
                    };
                    let best_prompt = move || {
                        let values = values.with(|v| v.get(id).cloned().flatten());
                        values.as_deref().and_then(best).and_then(|j| text_names.with(|t| t.get(j).cloned())).unwrap_or_default()
                    };
                    view! {
                        <tr data-name=row.name.clone() class:failed=move || result.with(|r| r.error.is_some())>
                            <td class="image">
                                {move || result3.with(|r| r.thumbnail.clone()).map(|src| view! { <img src=src alt=""/> })}
                                <span class="name">{row.name.clone()}</span>
                                {move || result4.with(|r| r.error.clone()).map(|e| view! { <div class="item-error">{e}</div> })}
                            </td>
                            {cells}
                            <td class="best">{best_prompt}</td>
                        </tr>
                    }.into_any()
                }/>
            </tbody>
        </table>
        {move || {
            let hidden = embed.images.with(Vec::len).saturating_sub(order.with(Vec::len));
            (hidden > 0).then(|| view! {
                <p class="more">
                    {format!("{hidden} more rows not drawn (the exports hold them all) ")}
                    <button id="show-more" on:click=move |_| shown.update(|n| *n += ROWS_PER_PAGE)>{format!("show {} more", hidden.min(ROWS_PER_PAGE))}</button>
                </p>
            })
        }}
    }
}
