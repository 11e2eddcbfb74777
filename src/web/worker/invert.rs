//! The worker's inversion job: the library's engine, stepped one optimizer
//! step at a time with the event loop let in between, so Pause, Resume and
//! Cancel are seen at once. On the CPU a step of a ViT-B takes seconds, so
//! there the event loop also runs between passes of a few views, and a
//! Cancel abandons the step in progress.

use std::future::Future;
use std::task::Poll;

use cliplens::compare::prepare_image;
use cliplens::invert::output::{InversionRecord, inversion_png};
use cliplens::invert::target::{Target, embedding_term, image_term, prompt_terms};
use cliplens::clip::{Clip, dot};
use cliplens::invert::{InvertSettings, Inversion, Inverter, finish};
use cliplens::preprocess::RgbImage;
use cliplens::protocol::{BackendKind, FromWorker, JobId, NamedVector, ProgressUnit, Thumbnail};
use web_sys::File;

use crate::jobs::{loaded_clip, progress};
use crate::shared::net::{file_bytes, sleep_ms, yield_now};
use crate::start::{STATE, is_cancelled, is_paused, post};

/// How often a paused or waiting job looks for Resume or Cancel.
const POLL_MS: i32 = 50;

/// Awaits `work`, calling `on_cancel` as soon as `job` is cancelled meanwhile.
/// The work itself goes on: on a GPU it is already queued, and dropping a
/// pending read-back would leave a buffer mapped (wgpu then panics).
async fn noticing_cancel<T>(job: JobId, work: impl Future<Output = T>, mut on_cancel: impl FnMut()) -> T {
    let mut work = std::pin::pin!(work);
    let mut cancelled = std::pin::pin!(async {
        while !is_cancelled(job) {
            sleep_ms(POLL_MS).await;
        }
    });
    let mut noticed = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if !noticed && cancelled.as_mut().poll(cx).is_ready() {
            noticed = true;
            on_cancel();
        }
        Poll::Pending
    })
    .await
}

/// Photo-sized models (inputs of 128 px and up, a ViT-B): seconds per view in wasm on a CPU.
fn slow_on_cpu(image_size: usize) -> bool {
    image_size >= 128
}

/// Views per forward and backward pass on the CPU: one for photo-sized
/// models, the default for the 64-px world models.
fn views_per_cpu_pass(image_size: usize) -> usize {
    if slow_on_cpu(image_size) { 1 } else { 8 }
}

fn thumbnail_of(image: &RgbImage) -> Thumbnail {
    Thumbnail { width: image.width, height: image.height, rgb: image.pixels.clone() }
}

fn to_string(e: cliplens::Error) -> String {
    e.to_string()
}

/// The target of `prompt` plus the images named in `image_names` and the
/// `vectors`, with the prompts' truncation warnings.
async fn build_target(
    clip: &Clip,
    prompt: &str,
    image_names: &[String],
    files: &[File],
    vectors: &[NamedVector],
) -> Result<(Target, Vec<String>), String> {
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    // An empty prompt is fine when images or vectors give the target; alone it gets its message.
    if !prompt.trim().is_empty() || (image_names.is_empty() && vectors.is_empty()) {
        let (terms, w) = prompt_terms(clip, prompt).await.map_err(to_string)?;
        parts.extend(terms);
        warnings.extend(w);
    }
    for (name, file) in image_names.iter().zip(files) {
        let bytes = file_bytes(file).await.map_err(|e| format!("{name}: {e}"))?;
        let image = prepare_image(&bytes, name, &clip.preprocess).map_err(to_string)?;
        parts.push(image_term(clip, name, &image, 1.0).await.map_err(to_string)?);
    }
    let dim = clip.config().projection_dim;
    for v in vectors {
        if v.vector.len() != dim {
            return Err(format!("{}: has {} numbers but the model's embeddings have {dim}", v.name, v.vector.len()));
        }
        parts.push(embedding_term(&v.name, v.vector.clone(), 1.0));
    }
    Ok((Target::combine(parts).map_err(to_string)?, warnings))
}

pub async fn invert(
    job: JobId,
    prompt: &str,
    image_names: &[String],
    files: &[File],
    vectors: &[NamedVector],
    settings: InvertSettings,
) -> Result<(), String> {
    let clip = loaded_clip()?;
    settings.check().map_err(to_string)?;
    let (target, warnings) = build_target(&clip, prompt, image_names, files, vectors).await?;
    let backend = STATE.with_borrow(|s| s.backend).unwrap_or(BackendKind::Cpu);

    let started = js_sys::Date::now();
    let mut paused_ms = 0.0;
    let mut announced = false;
    let mut inverter = Inverter::new(&clip, &target, settings.clone()).map_err(to_string)?;
    let slow_steps = slow_on_cpu(clip.config().vision_config.image_size);
    if backend == BackendKind::Cpu {
        // Fewer views per pass: more chances to see a Cancel; the gradient is
        // the same sum however the views are grouped.
        inverter.limit_views_per_pass(views_per_cpu_pass(clip.config().vision_config.image_size));
    }
    while !inverter.done() {
        if is_paused(job) && !is_cancelled(job) {
            let since = js_sys::Date::now();
            post(&FromWorker::InvertHeld { job, paused: true, step: inverter.steps_done() });
            while is_paused(job) && !is_cancelled(job) {
                sleep_ms(POLL_MS).await;
            }
            paused_ms += js_sys::Date::now() - since;
            post(&FromWorker::InvertHeld { job, paused: false, step: inverter.steps_done() });
        }
        if is_cancelled(job) {
            break;
        }
        // On a GPU the step runs while this waits for its result: a cancel
        // is answered at once, and the loop ends after the step.
        let steps_done = inverter.steps_done();
        // Between passes: let messages in, and stop on a Cancel.
        let keep_going = async || {
            yield_now().await;
            !is_cancelled(job)
        };
        let step = noticing_cancel(job, inverter.step_unless_stopped(keep_going), || {
            post(&FromWorker::InvertStopped { job, steps_done });
            announced = true;
        })
        .await
        .map_err(to_string)?;
        let Some(r) = step else { break };
        post(&FromWorker::InvertStep { job, step: r.step, steps: r.steps, similarity: r.similarity, resolution: r.resolution });
        progress(job, "inverting", r.step as u64, r.steps as u64, ProgressUnit::Steps);
        // On the CPU the page may have to stop this worker mid-step (see
        // `finish_stopped`): then it keeps the last preview, so send one
        // after every step of a model whose steps take seconds.
        if inverter.wants_preview() || (backend == BackendKind::Cpu && slow_steps) {
            let image = inverter.image().await.map_err(to_string)?;
            post(&FromWorker::InvertPreview { job, step: r.step, image: thumbnail_of(&image) });
        }
        // Lets Pause, Resume and Cancel in.
        yield_now().await;
    }
    if !inverter.done() && !announced {
        post(&FromWorker::InvertStopped { job, steps_done: inverter.steps_done() });
    }
    if inverter.steps_done() == 0 {
        // Cancelled before the first step: the random start is no result.
        return Ok(());
    }
    let stopped = !inverter.done();
    let result = finish(&clip, &inverter, stopped).await.map_err(to_string)?;
    let seconds = (js_sys::Date::now() - started - paused_ms) / 1000.0;
    let record = InversionRecord::of(&clip, &target, &result, settings, seconds, backend.as_str().into()).await.map_err(to_string)?;
    let png = inversion_png(&result.image, &record).map_err(to_string)?;
    post(&FromWorker::Inverted { job, png, image: thumbnail_of(&result.image), record, warnings });
    Ok(())
}

/// An inversion whose worker was stopped mid-step (on a CPU a Cancel cannot
/// wait for a ViT-B step to end): its image as last previewed, after
/// `steps_done` steps, becomes a record and a PNG like any other result.
#[allow(clippy::too_many_arguments)]
pub async fn finish_stopped(
    job: JobId,
    prompt: &str,
    image_names: &[String],
    files: &[File],
    vectors: &[NamedVector],
    settings: InvertSettings,
    image: Thumbnail,
    curve: Vec<f32>,
    seconds: f64,
) -> Result<(), String> {
    let clip = loaded_clip()?;
    let (target, warnings) = build_target(&clip, prompt, image_names, files, vectors).await?;
    let image = RgbImage::new(image.width, image.height, image.rgb);
    let embed = clip.embed_images(std::slice::from_ref(&image)).await.map_err(to_string)?;
    let similarity = dot(&embed[0], &target.vector);
    let steps_done = curve.len();
    let result = Inversion { image, similarity, curve, steps_done, stopped: true };
    let backend = STATE.with_borrow(|s| s.backend).unwrap_or(BackendKind::Cpu);
    let record = InversionRecord::of(&clip, &target, &result, settings, seconds, backend.as_str().into()).await.map_err(to_string)?;
    let png = inversion_png(&result.image, &record).map_err(to_string)?;
    post(&FromWorker::Inverted { job, png, image: thumbnail_of(&result.image), record, warnings });
    Ok(())
}
