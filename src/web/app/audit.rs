//! Audit: the bias audit on this page. Prompt association tests of the
//! loaded model (editable sets, defaults for the world or for real CLIPs)
//! and the folder audit of the page's images (the same rows as Embed &
//! compare) with the user's labels and predictions CSVs. The worker and the
//! library do all the math; this page sends inputs, shows tables and
//! charts, and saves the report (HTML, JSON) that `cliplens audit report` reads too.

use cliplens::audit::associations::{AssociationReport, AssociationSpec, PromptSet};
use cliplens::audit::folder::{self, AttributeSpec, FolderReport, FolderSettings, PERCEIVED_NOTE};
use cliplens::audit::report::{self, AuditKind, AuditRecord, ModelInfo};
use cliplens::audit::stats::Estimate;
use cliplens::protocol::{CsvText, JobId, ToWorker};
use leptos::prelude::*;

use crate::app::AppState;
use crate::embed::ImageDrop;
use crate::files::{self, Picker};
use crate::jobs::JobKind;

/// The sets as the page edits them: words and templates, not prompts.
#[derive(Clone, Debug, PartialEq)]
struct SetsText {
    targets: String,
    templates: String,
    a_name: String,
    a: String,
    b_name: String,
    b: String,
    /// Line i of A and of B are the same phrase: the per-target test flips signs within pairs.
    paired: bool,
}

fn is_world(model_name: &str) -> bool {
    model_name.starts_with("world-")
}

fn default_spec(model_name: &str) -> AssociationSpec {
    if is_world(model_name) { AssociationSpec::world() } else { AssociationSpec::gender_professions() }
}

impl SetsText {
    fn from_spec(spec: &AssociationSpec) -> Self {
        let templates = spec.targets.first().map(|t| t.prompts.iter().map(|p| p.replacen(&t.name, "{}", 1)).collect::<Vec<_>>()).unwrap_or_default();
        SetsText {
            targets: spec.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>().join("\n"),
            templates: templates.join("\n"),
            a_name: spec.attribute_a.name.clone(),
            a: spec.attribute_a.prompts.join("\n"),
            b_name: spec.attribute_b.name.clone(),
            b: spec.attribute_b.prompts.join("\n"),
            paired: spec.paired,
        }
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
    }

    /// The spec to send; the default's WEAT sets stay.
    fn spec(&self, base: &AssociationSpec) -> Result<AssociationSpec, String> {
        let templates = Self::lines(&self.templates);
        if let Some(t) = templates.iter().find(|t| !t.contains("{}")) {
            return Err(format!("template {t:?}: put {{}} where the target word goes"));
        }
        let (a, b) = (Self::lines(&self.a), Self::lines(&self.b));
        let spec = AssociationSpec {
            targets: Self::lines(&self.targets).iter().map(|w| PromptSet::new(w, templates.iter().map(|t| t.replace("{}", w)).collect())).collect(),
            paired: self.paired,
            attribute_a: PromptSet::new(self.a_name.trim(), a),
            attribute_b: PromptSet::new(self.b_name.trim(), b),
            ..base.clone()
        };
        spec.check().map_err(|e| e.to_string())?;
        Ok(spec)
    }
}

#[derive(Clone, Copy)]
pub struct Audit {
    sets: RwSignal<Option<SetsText>>,
    /// The model the sets' defaults were made for.
    sets_for: StoredValue<String>,
    pub associations: RwSignal<Option<(AssociationReport, String)>>,
    pub folder: RwSignal<Option<(FolderReport, String)>>,
    attribute: RwSignal<String>,
    k: RwSignal<String>,
    queries: RwSignal<String>,
    labels: RwSignal<Option<CsvText>>,
    predictions: RwSignal<Option<CsvText>>,
    pending: StoredValue<Vec<JobId>>,
    pub error: RwSignal<Option<String>>,
}

impl Audit {
    pub fn new() -> Self {
        Audit {
            sets: RwSignal::new(None),
            sets_for: StoredValue::new(String::new()),
            associations: RwSignal::new(None),
            folder: RwSignal::new(None),
            attribute: RwSignal::new(String::new()),
            k: RwSignal::new(String::new()),
            queries: RwSignal::new(String::new()),
            labels: RwSignal::new(None),
            predictions: RwSignal::new(None),
            pending: StoredValue::new(Vec::new()),
            error: RwSignal::new(None),
        }
    }
}

impl AppState {
    fn model_name(self) -> String {
        self.models.model.get_untracked().map(|m| m.name).unwrap_or_default()
    }

    pub fn run_associations(self) {
        let a = self.audit;
        let name = self.model_name();
        let Some(text) = a.sets.get_untracked() else { return };
        match text.spec(&default_spec(&name)) {
            Ok(spec) => {
                a.error.set(None);
                let job = self.jobs.open(JobKind::Audit, "testing prompt associations");
                a.pending.update_value(|p| p.push(job));
                self.link.send(ToWorker::AuditAssociations { job, spec }, Vec::new());
            }
            Err(e) => a.error.set(Some(e)),
        }
    }

    pub fn run_folder_audit(self) {
        let a = self.audit;
        let world = is_world(&self.model_name());
        let (files, embeds): (Vec<String>, Vec<Vec<f32>>) = self
            .embed
            .images
            .with_untracked(|rows| rows.iter().filter_map(|r| Some((r.name.clone(), r.result.with_untracked(|x| x.embed.clone())?))).unzip());
        if files.len() < 2 {
            a.error.set(Some("add at least two images (a folder) first".into()));
            return;
        }
        let attribute = match AttributeSpec::parse(a.attribute.get_untracked().trim(), folder::default_templates(world)) {
            Ok(x) => x,
            Err(e) => return a.error.set(Some(e.to_string())),
        };
        let mut settings = FolderSettings::new(vec![attribute], 0);
        if let Ok(k) = a.k.get_untracked().trim().parse::<usize>() {
            settings.k = k.max(1);
        }
        settings.queries = SetsText::lines(&a.queries.get_untracked());
        a.error.set(None);
        let job = self.jobs.open(JobKind::Audit, &format!("auditing {} images", files.len()));
        a.pending.update_value(|p| p.push(job));
        let (labels, predictions) = (a.labels.get_untracked(), a.predictions.get_untracked());
        self.link.send(ToWorker::AuditFolder { job, files, embeds, settings, labels, predictions }, Vec::new());
    }

    pub fn associations_audited(self, job: JobId, report: AssociationReport, sha256: String) {
        if self.audit.pending.with_value(|p| p.contains(&job)) {
            self.audit.associations.set(Some((report, sha256)));
        }
    }

    pub fn folder_audited(self, job: JobId, report: FolderReport, sha256: String) {
        if self.audit.pending.with_value(|p| p.contains(&job)) {
            self.audit.folder.set(Some((report, sha256)));
        }
    }

    /// The saved audits of this page, for the report and the JSON export.
    fn audit_records(self) -> Vec<(AuditRecord, String)> {
        let name = self.model_name();
        let info = |sha256: &str| ModelInfo { name: name.clone(), sha256: sha256.to_string() };
        let mut out = Vec::new();
        if let Some((r, sha)) = self.audit.associations.get_untracked()
            && let Ok(record) = AuditRecord::new(AuditKind::Associations, info(&sha), None, &r)
        {
            out.push((record, "prompt associations".to_string()));
        }
        if let Some((r, sha)) = self.audit.folder.get_untracked()
            && let Ok(record) = AuditRecord::new(AuditKind::Folder, info(&sha), None, &r)
        {
            out.push((record, "the page's images".to_string()));
        }
        out
    }
}

fn pct(e: &Estimate) -> String {
    format!("{:.1}% [{:.1}, {:.1}]", 100.0 * e.value, 100.0 * e.ci95[0], 100.0 * e.ci95[1])
}

async fn read_csv(picked: Vec<(String, web_sys::File)>) -> Option<CsvText> {
    let (name, file) = picked.into_iter().next()?;
    let text = wasm_bindgen_futures::JsFuture::from(file.text()).await.ok()?.as_string()?;
    Some(CsvText { name, text })
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let a = state.audit;
    // Defaults follow the model: world words for the world models, professions and gender otherwise.
    Effect::new(move |_| {
        let Some(model) = state.models.model.get() else { return };
        if a.sets_for.get_value() != model.name {
            a.sets_for.set_value(model.name.clone());
            a.sets.set(Some(SetsText::from_spec(&default_spec(&model.name))));
            a.attribute.set(if is_world(&model.name) { "group=glim,vorn".into() } else { "gender=man,woman".into() });
        }
    });
    let field = move |get: fn(&SetsText) -> String, set: fn(&mut SetsText, String)| {
        (move || a.sets.with(|s| s.as_ref().map(get).unwrap_or_default()), move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            a.sets.update(|s| {
                if let Some(s) = s {
                    set(s, v)
                }
            })
        })
    };
    let (targets, on_targets) = field(|s| s.targets.clone(), |s, v| s.targets = v);
    let (templates, on_templates) = field(|s| s.templates.clone(), |s, v| s.templates = v);
    let (a_name, on_a_name) = field(|s| s.a_name.clone(), |s, v| s.a_name = v);
    let (a_text, on_a) = field(|s| s.a.clone(), |s, v| s.a = v);
    let (b_name, on_b_name) = field(|s| s.b_name.clone(), |s, v| s.b_name = v);
    let (b_text, on_b) = field(|s| s.b.clone(), |s, v| s.b = v);
    let on_labels = Callback::new(move |picked| leptos::task::spawn_local(async move { a.labels.set(read_csv(picked).await) }));
    let on_predictions = Callback::new(move |picked| leptos::task::spawn_local(async move { a.predictions.set(read_csv(picked).await) }));
    let save_report = move |_| {
        let records = state.audit_records();
        let (records, names): (Vec<AuditRecord>, Vec<String>) = records.into_iter().unzip();
        match report::html(&records, &names) {
            Ok(html) => {
                if let Err(e) = files::save("cliplens-audit.html", "text/html", &html) {
                    state.notice.set(Some(format!("could not save the report: {e:?}")));
                }
            }
            Err(e) => state.notice.set(Some(e.to_string())),
        }
    };
    let save_json = move |kind: AuditKind| {
        let Some((record, _)) = state.audit_records().into_iter().find(|(r, _)| r.kind == kind) else { return };
        let name = if kind == AuditKind::Folder { "cliplens-audit-folder.json" } else { "cliplens-audit-associations.json" };
        if let Err(e) = files::save(name, "application/json", &serde_json::to_string_pretty(&record).unwrap_or_default()) {
            state.notice.set(Some(format!("could not save the JSON: {e:?}")));
        }
    };
    let association_chart = move || {
        a.associations.with(|r| {
            r.as_ref().map(|(r, _)| {
                let rows: Vec<(String, Estimate)> = r.targets.iter().map(|t| (t.target.clone(), Estimate::exact(t.s))).collect();
                let span = rows.iter().map(|(_, e)| e.value.abs()).fold(0.01, f64::max);
                report::bar_chart(
                    &format!("s(target, {}, {}): right of the line leans {}", r.spec.attribute_a.name, r.spec.attribute_b.name, r.spec.attribute_a.name),
                    &rows,
                    -span,
                    span,
                )
            })
        })
    };
    let composition_chart = move || {
        a.folder.with(|r| {
            r.as_ref().map(|(r, _)| {
                r.composition
                    .iter()
                    .map(|c| {
                        let rows: Vec<(String, Estimate)> = c.values.iter().map(|v| (format!("{} (n {})", v.value, v.count), v.share)).collect();
                        report::bar_chart(&format!("CLIP-perceived {}: share of images ({} abstained)", c.attribute, c.abstained), &rows, 0.0, 1.0)
                    })
                    .collect::<String>()
            })
        })
    };

    view! {
        <section class="audit-intro">
            <h2>"Bias audit"</h2>
            <p>"What the loaded model associates with words, and what it perceives in your images. Everything runs on this page; nothing is uploaded."</p>
            <p class="note" id="audit-note">{PERCEIVED_NOTE}</p>
            {move || a.error.get().map(|e| view! { <p class="error" role="alert" id="audit-error">{e}</p> })}
        </section>
        <section class="audit-associations audit-block" aria-labelledby="audit-associations-title">
            <h3 id="audit-associations-title">"Prompt associations"</h3>
            <p class="hint">"Each target word, said in every template, against attribute sets A and B (tick matched pairs when line i of A and of B is the same phrase: the test then flips signs within pairs). s above 0 leans to A; flagged: p < 0.01 and at least a small effect (|d| ≥ 0.2)."</p>
            <div class="audit-sets">
                <label>"Target words" <textarea id="audit-targets" rows="8" prop:value=targets on:change=on_targets></textarea></label>
                <label>"Templates ({} = word)" <textarea id="audit-templates" rows="8" prop:value=templates on:change=on_templates></textarea></label>
                <div>
                    <label>"A is called " <input id="audit-a-name" prop:value=a_name on:change=on_a_name/></label>
                    <textarea id="audit-a" aria-label="attribute set A, one prompt per line" rows="6" prop:value=a_text on:change=on_a></textarea>
                </div>
                <div>
                    <label>"B is called " <input id="audit-b-name" prop:value=b_name on:change=on_b_name/></label>
                    <textarea id="audit-b" aria-label="attribute set B, one prompt per line" rows="6" prop:value=b_text on:change=on_b></textarea>
                </div>
            </div>
            <label class="audit-paired"><input type="checkbox" id="audit-paired" prop:checked=move || a.sets.with(|s| s.as_ref().is_some_and(|s| s.paired))
                on:change=move |ev| { let on = event_target_checked(&ev); a.sets.update(|s| if let Some(s) = s { s.paired = on }) }/>
                " A and B are matched pairs (line i of each is the same phrase)"</label>
            <button id="audit-run-associations" disabled=move || state.models.model.get().is_none() on:click=move |_| state.run_associations()>"Run the association test"</button>
            {move || a.associations.get().map(|(r, _)| {
                let p_a = r.spec.attribute_a.name.clone();
                view! {
                    <div class="chart" inner_html=association_chart></div>
                    <div class="table-wrap" tabindex="0" role="region" aria-label="association test results"><table id="audit-association-table">
                        <thead><tr><th scope="col">"target"</th><th scope="col">"s"</th><th scope="col">"d"</th><th scope="col">"p"</th><th scope="col">"effect"</th><th scope="col">"flag"</th><th scope="col">{format!("zero-shot P({p_a}) [95% CI]")}</th></tr></thead>
                        <tbody>{r.targets.iter().zip(&r.zero_shot).map(|(t, z)| view! {
                            <tr data-flagged=t.flagged.to_string()>
                                <th scope="row">{t.target.clone()}</th>
                                <td>{format!("{:+.4}", t.s)}</td>
                                <td>{format!("{:+.2}", t.d)}</td>
                                <td>{format!("{:.4}", t.test.p_value)}</td>
                                <td>{t.size.clone()}</td>
                                <td>{if t.flagged { "flagged" } else { "" }}</td>
                                <td>{pct(&z.probability_a)}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                    {r.weat.as_ref().zip(r.spec.weat.as_ref()).map(|(w, (x, y))| view! {
                        <p id="audit-weat">{format!("WEAT, {} against {}: d = {:+.3}, one-sided p = {:.5} over {} re-partitions ({}).", x.name, y.name, w.d, w.p_value, w.permutations, if w.exact { "all of them" } else { "random, seeded" })}</p>
                    })}
                    <button id="audit-associations-json" on:click=move |_| save_json(AuditKind::Associations)>"Save JSON"</button>
                }
            })}
        </section>
        <section class="audit-folder audit-block" aria-labelledby="audit-folder-title">
            <h3 id="audit-folder-title">"Your images"</h3>
            <ImageDrop files_id="audit-files" folder_id="audit-folder-picker" hint="The same images as Embed & compare. Read on this page, never uploaded.">{()}</ImageDrop>
            <div class="audit-folder-settings">
                <label>"Attribute " <input id="audit-attribute" prop:value=move || a.attribute.get() on:change=move |ev| a.attribute.set(event_target_value(&ev))/></label>
                <label>"Clusters k " <input id="audit-k" inputmode="numeric" size="3" placeholder="auto" prop:value=move || a.k.get() on:change=move |ev| a.k.set(event_target_value(&ev))/></label>
                <Picker label="labels CSV…" id="audit-labels" single=true accept=".csv,text/csv" on_pick=on_labels/>
                <Picker label="predictions CSV…" id="audit-predictions" single=true accept=".csv,text/csv" on_pick=on_predictions/>
                <span id="audit-csvs">{move || {
                    let names: Vec<String> = [a.labels.get(), a.predictions.get()].into_iter().flatten().map(|c| c.name).collect();
                    if names.is_empty() { "no CSV chosen".to_string() } else { names.join(", ") }
                }}</span>
                <label>"Neutral queries (retrieval skew) " <textarea id="audit-queries" rows="2" prop:value=move || a.queries.get() on:change=move |ev| a.queries.set(event_target_value(&ev))></textarea></label>
            </div>
            <button id="audit-run-folder" disabled=move || state.models.model.get().is_none() on:click=move |_| state.run_folder_audit()>"Audit these images"</button>
            {move || a.folder.get().map(|(r, _)| view! {
                <div id="audit-folder-results">
                    <p id="audit-folder-summary">{format!("{} images, {} pseudo-groups.", r.images, r.clustering.k)}
                        {r.ari.zip(r.ami).map(|(ari, ami)| format!(" Against the labels: ARI {ari:.3}, AMI {ami:.3}."))}</p>
                    <div class="chart" inner_html=composition_chart></div>
                    <div class="table-wrap" tabindex="0" role="region" aria-label="pseudo-groups"><table id="audit-groups">
                        <thead><tr><th scope="col">"pseudo-group"</th><th scope="col">"images"</th><th scope="col">"your model's accuracy [95% CI]"</th></tr></thead>
                        <tbody>{r.groups.iter().map(|g| view! {
                            <tr><th scope="row">{g.name.clone()}</th><td>{g.n}</td><td>{g.metrics.as_ref().map(|m| pct(&m.accuracy)).unwrap_or_else(|| "–".into())}</td></tr>
                        }).collect_view()}</tbody>
                    </table></div>
                    {r.fairness.as_ref().map(|f| view! {
                        <p id="audit-fairness">{format!(
                            "Worst pseudo-group accuracy {}; demographic-parity difference {:.3}; equalized-odds difference {:.3} (positive label {:?}).",
                            pct(&f.worst_group_accuracy), f.demographic_parity_difference.value, f.equalized_odds_difference.value, f.positive
                        )}</p>
                    })}
                    {(!r.problems.is_empty() || !r.warnings.is_empty()).then(|| view! {
                        <ul id="audit-problems">{r.problems.iter().chain(&r.warnings).map(|p| view! { <li>{p.clone()}</li> }).collect_view()}</ul>
                    })}
                    <button id="audit-folder-json" on:click=move |_| save_json(AuditKind::Folder)>"Save JSON"</button>
                </div>
            })}
        </section>
        <section class="audit-report">
            <button id="audit-report" disabled=move || a.associations.get().is_none() && a.folder.get().is_none() on:click=save_report>"Save the report (HTML)"</button>
            <p class="hint">"One self-contained file: every table and chart, settings, seeds, model id and sha256. "<code>"cliplens audit report"</code>" reads it back and compares two."</p>
        </section>
    }
}
