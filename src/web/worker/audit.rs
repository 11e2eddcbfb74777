//! The Audit page's jobs: the prompt association tests, the folder audit,
//! the inversion probe and CLIP-debias. The work is the library's `audit`
//! module; this file moves messages and lets Cancel in between inversions.

use cliplens::audit::associations::{self, AssociationSpec};
use cliplens::audit::debias::{self, HeadSettings};
use cliplens::audit::probe::{Probe, ProbeSettings};
use cliplens::audit::safety::SafetyDetector;
use web_sys::File;
use cliplens::audit::folder::{self, FolderSettings, UserTables};
use cliplens::audit::tables::{self, Table};
use cliplens::protocol::{CsvText, FromWorker, JobId, ProgressUnit, Thumbnail};

use crate::jobs::{loaded_clip, progress, side_model};
use crate::shared::net::{file_bytes, yield_now};
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

/// The probe, one inversion at a time: each is posted as it is judged, and
/// a Cancel ends the run with the report of what is done.
pub async fn probe(job: JobId, settings: &ProbeSettings, judge_id: Option<&str>, detector: Option<(&str, &File)>) -> Result<(), String> {
    let clip = loaded_clip()?;
    settings.invert.check().map_err(|e| e.to_string())?;
    let detector = match detector {
        Some((name, file)) => {
            let bytes = file_bytes(file).await.map_err(|e| format!("{name}: {e}"))?;
            Some(SafetyDetector::from_zip(&bytes, name).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let judge = match judge_id {
        Some(id) => {
            progress(job, format!("loading the judge {id}"), 0, 1, ProgressUnit::Items);
            match side_model(job, id).await? {
                Some((model, sha256)) => Some((model, (id.to_string(), sha256))),
                None => return Ok(()),
            }
        }
        None => None,
    };
    let settings = ProbeSettings { self_judged: judge.is_none(), ..settings.clone() };
    let judge_clip = judge.as_ref().map_or(&*clip, |(j, _)| &**j);
    let mut run = Probe::new(&clip, judge_clip, &settings, detector.as_ref()).await.map_err(|e| e.to_string())?;
    let total = run.total();
    progress(job, "inverting and judging", 0, total as u64, ProgressUnit::Items);
    while !is_cancelled(job) {
        let Some(image) = run.next().await.map_err(|e| e.to_string())? else { break };
        let picture = image.image.as_ref().map(|i| Thumbnail { width: i.width, height: i.height, rgb: i.pixels.clone() });
        let image = image.clone();
        let done = run.done();
        if let Some(picture) = picture {
            post(&FromWorker::ProbeImaged { job, image, picture, done, total });
        }
        progress(job, "inverting and judging", done as u64, total as u64, ProgressUnit::Items);
        // Lets Cancel in.
        yield_now().await;
    }
    let report = run.report();
    post(&FromWorker::Probed { job, report, model_sha256: model_sha256(), judge: judge.map(|(_, info)| info) });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn debias(
    job: JobId,
    files: &[String],
    embeds: &[Vec<f32>],
    settings: &FolderSettings,
    labels: CsvText,
    target: &str,
    group: Option<&str>,
    head: &HeadSettings,
) -> Result<(), String> {
    let clip = loaded_clip()?;
    let device = STATE.with_borrow(|s| s.device.clone()).ok_or("the worker has no device yet")?;
    progress(job, "finding the pseudo-groups", 0, 2, ProgressUnit::Items);
    let prompts = folder::embed_prompts(&clip, settings).await.map_err(|e| e.to_string())?;
    // The labels' row problems reach the report once, through the folder audit.
    let (table, _) = Table::parse(labels.text.as_bytes(), &labels.name, &[target]).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let labels = tables::or_problem(Table::parse(labels.text.as_bytes(), &labels.name, &[]), &mut problems);
    let report =
        folder::audit(files, embeds, &prompts, settings, UserTables { labels, predictions: None, problems }).map_err(|e| e.to_string())?;
    if is_cancelled(job) {
        return Ok(());
    }
    progress(job, "training the classifier four ways", 1, 2, ProgressUnit::Items);
    let out = debias::on_folder(&device, files, embeds, &report, &table, target, group, head).await.map_err(|e| e.to_string())?;
    post(&FromWorker::Debiased { job, report: out, model_sha256: model_sha256() });
    Ok(())
}
