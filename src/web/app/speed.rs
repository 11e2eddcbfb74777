//! Speed: how fast the loaded model runs on this device. The worker times
//! image and text embedding with `cliplens::speed` (as `cliplens bench
//! speed` does natively); this page sends the plan, shows the medians and
//! saves them as JSON. `cliplens bench browser` drives it to compare CLIP
//! Lens with transformers.js in the same browser (BENCHMARKS.md).

use cliplens::protocol::{BackendKind, JobId, ToWorker};
use cliplens::speed::{SpeedPlan, SpeedReport, format_rate, median};
use cliplens::weights::WeightFormat;
use leptos::prelude::*;

use crate::app::AppState;
use crate::jobs::JobKind;

/// A finished measurement, with what it ran on.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub report: SpeedReport,
    pub model: String,
    pub backend: String,
}

#[derive(Clone, Copy)]
pub struct Speed {
    batches: RwSignal<String>,
    texts: RwSignal<String>,
    runs: RwSignal<String>,
    pub result: RwSignal<Option<Measured>>,
    pub error: RwSignal<Option<String>>,
    /// The newest run's job: an older run's report is dropped.
    pending: StoredValue<Option<JobId>>,
}

impl Speed {
    pub fn new() -> Self {
        Speed {
            batches: RwSignal::new("1, 32".into()),
            texts: RwSignal::new("32".into()),
            runs: RwSignal::new("5".into()),
            result: RwSignal::new(None),
            error: RwSignal::new(None),
            pending: StoredValue::new(None),
        }
    }

    fn plan(self) -> Result<SpeedPlan, String> {
        let number = |what: &str, text: &str| text.trim().parse::<usize>().map_err(|_| format!("{what}: `{}` is not a whole number", text.trim()));
        let batches = self
            .batches
            .get_untracked()
            .split([',', ' '])
            .filter(|s| !s.trim().is_empty())
            .map(|s| number("image batch sizes", s))
            .collect::<Result<Vec<_>, _>>()?;
        let texts = self.texts.with_untracked(|t| if t.trim().is_empty() { Ok(0) } else { number("prompts", t) })?;
        let plan = SpeedPlan { batches, texts, runs: number("runs", &self.runs.get_untracked())? };
        match plan.problem() {
            Some(problem) => Err(problem),
            None => Ok(plan),
        }
    }
}

impl AppState {
    fn measure_speed(self) {
        let s = self.speed;
        if self.models.model.get_untracked().is_none() {
            s.error.set(Some("no model is loaded yet".into()));
            return;
        }
        match s.plan() {
            Ok(plan) => {
                s.error.set(None);
                let job = self.jobs.open(JobKind::Speed, "timing the model");
                if let Some(old) = s.pending.get_value() {
                    self.cancel(old);
                }
                s.pending.set_value(Some(job));
                self.link.send(ToWorker::MeasureSpeed { job, plan }, Vec::new());
            }
            Err(e) => s.error.set(Some(e)),
        }
    }

    pub fn speed_measured(self, job: JobId, report: SpeedReport) {
        if self.speed.pending.get_value() != Some(job) {
            return;
        }
        let model = self
            .models
            .model
            .get_untracked()
            .map(|m| format!("{} ({}, {} px)", m.name, if m.format == WeightFormat::Int8 { "int8" } else { "float32" }, m.image_size))
            .unwrap_or_default();
        let backend = match self.backend.get_untracked() {
            Some(b) if b.kind == BackendKind::WebGpu => format!("WebGPU ({})", b.name),
            // Its name says it: "CPU (burn Flex, WebAssembly)".
            Some(b) => b.name,
            None => "unknown".into(),
        };
        self.speed.result.set(Some(Measured { report, model, backend }));
    }
}

fn milliseconds(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms < 10.0 { format!("{ms:.2}") } else if ms < 100.0 { format!("{ms:.1}") } else { format!("{ms:.0}") }
}

/// The JSON the page saves (and `cliplens bench browser` reads).
fn report_json(m: &Measured) -> String {
    serde_json::to_string(&serde_json::json!({ "model": m.model, "backend": m.backend, "report": m.report })).unwrap_or_default()
}

#[component]
pub fn SpeedPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let s = state.speed;
    let field = |id: &'static str, label: &'static str, signal: RwSignal<String>, hint: &'static str| {
        view! {
            <div class="speed-field">
                <label for=id>{label}</label>
                <input id=id type="text" inputmode="numeric" prop:value=move || signal.get() on:input=move |ev| signal.set(event_target_value(&ev))/>
                <span class="hint">{hint}</span>
            </div>
        }
    };
    let save = move |_| {
        if let Some(m) = s.result.get_untracked() {
            if let Err(e) = crate::files::save("cliplens-speed.json", "application/json", &report_json(&m)) {
                s.error.set(Some(format!("could not save: {e:?}")));
            }
        }
    };
    view! {
        <section class="speed inputs">
            <h2>"How fast is this device?"</h2>
            <p class="hint">"Times the loaded model here, in this tab: image embeddings from pixels (random ones: decoding and resizing are left out) at each batch size, and the text tower on a batch of short prompts. Each measurement is one warm-up call, then the timed calls; the table shows the median. Nothing leaves the page."</p>
            {field("speed-batches", "Image batch sizes", s.batches, "the first is latency, the others throughput")}
            {field("speed-texts", "Prompts", s.texts, "0 skips the text tower")}
            {field("speed-runs", "Timed calls each", s.runs, "the median is shown")}
            <div class="toolbar">
                <button id="speed-run" on:click=move |_| state.measure_speed()>"Measure"</button>
            </div>
            {move || s.error.get().map(|e| view! { <p class="error" role="alert" id="speed-error">{e}</p> })}
        </section>
        {move || s.result.get().map(|m| {
            let rows = m.report.rates();
            let runs = m.report.image.iter().map(|t| t.seconds.clone()).chain(m.report.text.clone()).collect::<Vec<_>>();
            let summary = format!(
                "{} on {}{}",
                m.model,
                m.backend,
                if m.report.complete { String::new() } else { ": cancelled part way, the rows show what was timed".into() }
            );
            view! {
                <section class="speed-result">
                    <p id="speed-summary">{summary}</p>
                    <table id="speed-report" data-report=report_json(&m)>
                        <thead><tr>
                            <th scope="col">"task"</th><th scope="col">"median per call (ms)"</th>
                            <th scope="col">"per second"</th><th scope="col">"each call (ms)"</th>
                        </tr></thead>
                        <tbody>
                            {rows.into_iter().zip(runs).map(|((task, _, per_second), seconds)| {
                                let unit = if task.starts_with("text") { "prompts" } else { "images" };
                                view! {
                                <tr>
                                    <th scope="row">{task}</th>
                                    <td>{median(&seconds).map(milliseconds).unwrap_or_else(|| "—".into())}</td>
                                    <td>{format!("{} {unit}", format_rate(per_second))}</td>
                                    <td>{seconds.iter().map(|&x| milliseconds(x)).collect::<Vec<_>>().join(", ")}</td>
                                </tr>
                            }}).collect_view()}
                        </tbody>
                    </table>
                    <div class="toolbar">
                        <button id="speed-save" on:click=save>"Save JSON"</button>
                    </div>
                    <p class="hint">"BENCHMARKS.md in the project compares these with transformers.js in the same browser and with PyTorch natively."</p>
                </section>
            }
        })}
    }
}
