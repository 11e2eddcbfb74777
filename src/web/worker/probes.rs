//! The Probes page's jobs: the library's probes (`cliplens::probes`) on the
//! loaded model, with progress and the event loop let in (a Cancel) between
//! passes, each answered by a `ProbeViewed` the page shows as it is.

use cliplens::compare::prepare_image;
use cliplens::invert::output::encode_png;
use cliplens::invert::Preset;
use cliplens::probes::attribution::{self, AttributionSettings, Baseline};
use cliplens::probes::fooling::{self, Aim};
use cliplens::probes::gap;
use cliplens::probes::view::ProbeView;
use cliplens::probes::{association, social};
use cliplens::protocol::{FromWorker, JobId, ProbeRequest, ProgressUnit};
use cliplens::world::captions::{Task, full_caption};
use cliplens::world::render::render;
use cliplens::world::{ROLES, role_scenes};
use web_sys::File;

use crate::jobs::{loaded_clip, progress};
use crate::shared::net::{file_bytes, yield_now};
use crate::start::{is_cancelled, post};

/// Reports progress, lets the event loop in, and says whether to go on.
async fn step(job: JobId, stage: &str, done: usize, total: usize) -> bool {
    progress(job, stage, done as u64, total as u64, ProgressUnit::Steps);
    yield_now().await;
    !is_cancelled(job)
}

pub async fn run(job: JobId, request: ProbeRequest, files: &[File]) -> Result<(), String> {
    let clip = loaded_clip()?;
    let model = clip.name.clone();
    let view = match request {
        ProbeRequest::Gap { count, seed } => {
            if !step(job, "embedding world scenes", 0, 1).await {
                return Ok(());
            }
            let task = Task::Attribute(cliplens::world::COLOR);
            let (images, captions, classes) = gap::world_inputs(&clip, seed, count, task).await.map_err(|e| e.to_string())?;
            let report = gap::modality_gap(&images, &captions, Some(&classes), &gap::DEFAULT_LAMBDAS).map_err(|e| format!("modality gap: {e}"))?;
            ProbeView::gap(&model, &format!("{count} world scenes (seed {seed}), zero-shot colour"), &report)
        }
        ProbeRequest::Attribution { prompt, contrast, baseline, seed } => {
            let (image, source) = match files.first() {
                Some(file) => {
                    let bytes = file_bytes(file).await.map_err(|e| format!("{}: {e}", file.name()))?;
                    (prepare_image(&bytes, &file.name(), &clip.preprocess).map_err(|e| e.to_string())?, file.name())
                }
                None => {
                    let all: Vec<usize> = (0..ROLES.len()).collect();
                    let scene = role_scenes(seed, 1, &all, true).remove(0);
                    (render(&scene), format!("a world scene (seed {seed}): {}", full_caption(&scene)))
                }
            };
            let settings = AttributionSettings { baseline, ..AttributionSettings::default() };
            let report = attribution::attribute(&clip, &image, &prompt, contrast.as_deref(), &settings, async |done, total| {
                step(job, "attributing", done, total).await
            })
            .await
            .map_err(|e| e.to_string())?;
            let Some(report) = report else { return Ok(()) };
            let input = cliplens::preprocess::resize_and_crop(&image, &clip.preprocess);
            let svg = attribution::report_svg(&report, &input).map_err(|e| e.to_string())?;
            ProbeView::attribution(&model, &source, &report, svg)
        }
        ProbeRequest::AttributionWorld { count, seed } => {
            let role = AttributionSettings { baseline: Baseline::Blur, ..AttributionSettings::default() };
            let background = AttributionSettings { baseline: Baseline::Mean, ..AttributionSettings::default() };
            let check = attribution::world_check(&clip, seed, count, None, &role, &background, async |done, total| {
                step(job, "attributing world scenes", done, total).await
            })
            .await
            .map_err(|e| e.to_string())?;
            let Some(check) = check else { return Ok(()) };
            ProbeView::world_attribution(&model, &check)
        }
        ProbeRequest::Association { count, seed } => {
            if !step(job, "embedding two-figure scenes", 0, 1).await {
                return Ok(());
            }
            let items = association::world_questions(&clip, seed, count, association::TEMPLATE).await.map_err(|e| e.to_string())?;
            let report = association::analyse(&items, seed).map_err(|e| format!("concept association: {e}"))?;
            ProbeView::association(&model, &format!("{count} two-figure world scenes (seed {seed}) and their one-figure controls"), &report)
        }
        ProbeRequest::Social { count, seed } => {
            if !step(job, "embedding counterfactual pairs", 0, 1).await {
                return Ok(());
            }
            let pairs = social::world_pairs(&clip, seed, count).await.map_err(|e| e.to_string())?;
            let sets = social::embed_word_sets(&clip, &social::world_word_sets()).await.map_err(|e| e.to_string())?;
            let report = social::analyse(&pairs, &sets, seed).map_err(|e| format!("social perception: {e}"))?;
            ProbeView::social(&model, &format!("{count} world scenes (seed {seed}), each drawn glim and vorn"), &report)
        }
        ProbeRequest::Fooling { prompts, steps, count, seed } => {
            let prompts: Vec<String> = prompts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
            let mut settings = Preset::Baseline.settings_for(clip.config().vision_config.image_size);
            settings.seed = seed;
            settings.steps = steps.max(1);
            let fooling::Fooled { inversion, texts, .. } = fooling::fooling_image(&clip, &prompts, Aim::Min, settings.clone(), async |report| {
                step(job, "optimizing the fooling image", report.step, report.steps).await
            })
            .await
            .map_err(|e| e.to_string())?;
            if inversion.stopped || !step(job, "embedding real world scenes", 0, 1).await {
                return Ok(());
            }
            let (real, gap) = fooling::world_reference(&clip, seed, count).await.map_err(|e| e.to_string())?;
            let embed = clip.embed_images(std::slice::from_ref(&inversion.image)).await.map_err(|e| e.to_string())?.remove(0);
            let report = fooling::compare(&prompts, &texts, &embed, &real, &gap, &format!("{count} world scenes and their captions"))?;
            let png = encode_png(&inversion.image, &[("Software", "CLIP Lens fooling image".into())]).map_err(|e| e.to_string())?;
            ProbeView::fooling(&model, &format!("{count} real world scenes (seed {seed})"), &settings, &report, png)
        }
    };
    // A Cancel that came during the last stage still wins: the page asked for nothing more.
    if !is_cancelled(job) {
        post(&FromWorker::ProbeViewed { job, view });
    }
    Ok(())
}
