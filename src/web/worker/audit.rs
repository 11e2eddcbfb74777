//! The Audit page's jobs: the prompt association tests and the folder audit.
//! The work is the library's `audit` module; this file moves messages.

use cliplens::audit::associations::{self, AssociationSpec};
use cliplens::audit::folder::{self, FolderSettings, UserTables};
use cliplens::audit::tables::{self, Table};
use cliplens::protocol::{CsvText, FromWorker, JobId, ProgressUnit};

use crate::jobs::{loaded_clip, progress};
use crate::start::{STATE, is_cancelled, post};

fn model_sha256() -> String {
    STATE.with_borrow(|s| s.model_key.clone()).unwrap_or_default()
}

pub async fn associations(job: JobId, spec: AssociationSpec) -> Result<(), String> {
    let clip = loaded_clip()?;
    progress(job, "embedding the prompts and testing", 0, 1, ProgressUnit::Items);
    let report = associations::study(&clip, &spec).await.map_err(|e| e.to_string())?;
    if is_cancelled(job) {
        return Ok(());
    }
    post(&FromWorker::AssociationsAudited { job, report, model_sha256: model_sha256() });
    Ok(())
}

/// The page's CSV, parsed; see [`tables::or_problem`].
fn table(csv: Option<CsvText>, required: &[&str], problems: &mut Vec<String>) -> Option<Table> {
    let csv = csv?;
    tables::or_problem(Table::parse(csv.text.as_bytes(), &csv.name, required), problems)
}

pub async fn folder(
    job: JobId,
    files: &[String],
    embeds: &[Vec<f32>],
    settings: &FolderSettings,
    labels: Option<CsvText>,
    predictions: Option<CsvText>,
) -> Result<(), String> {
    let clip = loaded_clip()?;
    progress(job, "embedding the attribute prompts", 0, 2, ProgressUnit::Items);
    let prompts = folder::embed_prompts(&clip, settings).await.map_err(|e| e.to_string())?;
    if is_cancelled(job) {
        return Ok(());
    }
    progress(job, "clustering and measuring", 1, 2, ProgressUnit::Items);
    let mut problems = Vec::new();
    let labels = table(labels, &[], &mut problems);
    let predictions = table(predictions, &["label", "prediction"], &mut problems);
    let report = folder::audit(files, embeds, &prompts, settings, UserTables { labels, predictions, problems }).map_err(|e| e.to_string())?;
    post(&FromWorker::FolderAudited { job, report, model_sha256: model_sha256() });
    Ok(())
}
