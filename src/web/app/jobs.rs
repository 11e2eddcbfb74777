//! Job bookkeeping: the page numbers each job it sends, shows a progress row
//! per running job (keyed by job id, so progress updates change its text and
//! never rebuild it, and a Cancel click lands on the button it was aimed at),
//! and forgets the job when it ends.

use cliplens::protocol::{JobId, Progress, ProgressUnit};
use leptos::prelude::*;

/// What a job does: decides how its failure is shown and how a crash is recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    LoadModel,
    ProbeHub,
    EmbedTexts,
    EmbedImages,
    Invert,
    /// Preparing a concept dictionary, decomposing, intervening.
    Concepts,
    /// The bias audit's association tests and folder audits.
    Audit,
    /// Timing the model (the Speed page).
    Speed,
    /// A literature probe (the Probes page).
    Probe,
}

/// A running job, as its progress row shows it. Its signals are
/// reference-counted: a job outlives the page that started it.
#[derive(Clone)]
pub struct JobRow {
    pub job: JobId,
    pub kind: JobKind,
    /// The job as the row names it, e.g. "embedding 500 images".
    pub what: String,
    pub progress: ArcRwSignal<Option<Progress>>,
    /// When the current stage began: ETA and speed are per stage.
    pub stage_started_ms: ArcRwSignal<f64>,
}

#[derive(Clone, Copy)]
pub struct Jobs {
    pub running: RwSignal<Vec<JobRow>>,
    next: StoredValue<JobId>,
}

impl Jobs {
    pub fn new() -> Self {
        Jobs { running: RwSignal::new(Vec::new()), next: StoredValue::new(1) }
    }

    /// A new job number, with its progress row.
    pub fn open(self, kind: JobKind, what: &str) -> JobId {
        let job = self.next.get_value();
        self.next.set_value(job + 1);
        let row = JobRow {
            job,
            kind,
            what: what.to_string(),
            progress: ArcRwSignal::new(None),
            stage_started_ms: ArcRwSignal::new(js_sys::Date::now()),
        };
        self.running.update(|r| r.push(row));
        job
    }

    pub fn kind_of(self, job: JobId) -> Option<JobKind> {
        self.running.with_untracked(|r| r.iter().find(|x| x.job == job).map(|x| x.kind))
    }

    pub fn of_kind(self, kind: JobKind) -> Vec<JobId> {
        self.running.with_untracked(|r| r.iter().filter(|x| x.kind == kind).map(|x| x.job).collect())
    }

    pub fn progress(self, job: JobId, progress: Progress) {
        let Some(row) = self.running.with_untracked(|r| r.iter().find(|x| x.job == job).cloned()) else { return };
        if row.progress.with_untracked(|p| p.as_ref().is_none_or(|p| p.stage != progress.stage)) {
            row.stage_started_ms.set(js_sys::Date::now());
        }
        row.progress.set(Some(progress));
    }

    pub fn close(self, job: JobId) {
        self.running.update(|r| r.retain(|x| x.job != job));
    }

    /// Forgets every job (their worker is gone).
    pub fn close_all(self) -> Vec<JobRow> {
        let rows = self.running.get_untracked();
        self.running.set(Vec::new());
        rows
    }
}

/// "12.0 of 605.2 MB at 3.1 MB/s, about 190 s left", or "3 of 10, about 4 s left".
fn progress_line(what: &str, p: &Progress, stage_elapsed_s: f64) -> String {
    let eta = p.eta_seconds(stage_elapsed_s).map(|s| format!(", about {s:.0} s left")).unwrap_or_default();
    let amount = match p.unit {
        ProgressUnit::Bytes => {
            let speed = if stage_elapsed_s > 0.5 { format!(" at {:.1} MB/s", p.done as f64 / 1e6 / stage_elapsed_s) } else { String::new() };
            if p.total > 0 {
                format!("{:.1} of {:.1} MB{speed}", p.done as f64 / 1e6, p.total as f64 / 1e6)
            } else {
                format!("{:.1} MB{speed}", p.done as f64 / 1e6)
            }
        }
        ProgressUnit::Items | ProgressUnit::Steps => format!("{} of {}", p.done, p.total),
    };
    format!("{what}: {} {amount}{eta}", p.stage)
}

/// Progress rows (steps, speed, ETA) of running jobs, each with Cancel.
#[component]
pub fn JobList(on_cancel: Callback<JobId>) -> impl IntoView {
    let jobs = expect_context::<Jobs>();
    view! {
        <div class="jobs">
            <For each=move || jobs.running.get() key=|r| r.job children=move |r: JobRow| {
                let job = r.job;
                let (progress, started) = (r.progress.clone(), r.stage_started_ms.clone());
                let what = r.what.clone();
                let line = move || match progress.get() {
                    Some(p) => progress_line(&what, &p, (js_sys::Date::now() - started.get()) / 1000.0),
                    None => format!("{what}: waiting"),
                };
                // Screen readers hear each stage once ("downloading", "embedding"),
                // not every count of the line beside it.
                let stage = {
                    let (progress, what) = (r.progress.clone(), r.what.clone());
                    move || progress.with(|p| format!("{what}: {}", p.as_ref().map_or("waiting", |p| p.stage.as_str())))
                };
                let fraction = move || r.progress.with(|p| p.as_ref().map_or(0.0, Progress::fraction));
                view! {
                    <div class="job" data-job=job>
                        <progress max="1" value=fraction aria-label=r.what.clone()></progress>
                        <span class="job-line" aria-hidden="true">{line}</span>
                        <span class="visually-hidden" role="status">{stage}</span>
                        <button class="job-cancel" on:click=move |_| on_cancel.run(job)>"Cancel"</button>
                    </div>
                }
            }/>
        </div>
    }
}
