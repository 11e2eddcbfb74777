//! The Concepts page's jobs: encode a vocabulary into a dictionary (cached
//! per model and word list), decompose embeddings with it, intervene. The
//! work is the library's `concepts` module; this file moves messages and
//! bytes.

use std::rc::Rc;

use cliplens::concepts::collection::{compare, histogram, intervene};
use cliplens::concepts::dictionary::cache_key;
use cliplens::concepts::{Decomposition, Dictionary, ImageMean, Sparsity, Vocabulary, decompose};
use cliplens::protocol::{CONCEPT_CACHE, CollectionDecomposition, DecompositionResult, FromWorker, JobId, ProgressUnit, VocabularyChoice};

use crate::jobs::{loaded_clip, progress};
use crate::shared::cache::Store;
use crate::start::{STATE, is_cancelled};

fn now_ms() -> f64 {
    js_sys::Date::now()
}

pub async fn prepare(job: JobId, choice: VocabularyChoice) -> Result<(), String> {
    let clip = loaded_clip()?;
    let start = now_ms();
    let vocabulary = match choice {
        VocabularyChoice::Builtin { name } => name.vocabulary(),
        VocabularyChoice::Custom { source, words } => {
            Vocabulary::from_text(&source, &words.join("\n")).map_err(|e| e.to_string())?.0
        }
    };
    let model_key = STATE.with_borrow(|s| s.model_key.clone()).ok_or("no model is loaded yet")?;
    let key = format!("{}.bin", cache_key(&model_key, &vocabulary.sha256));
    let cache = Store::open(CONCEPT_CACHE).await;
    let cached = match &cache {
        Some(c) => c.get(&key).await.and_then(|bytes| Dictionary::from_bytes(&bytes, &key).ok()),
        None => None,
    };
    let from_cache = cached.is_some();
    let dictionary = match cached {
        Some(mut d) => {
            d.vocabulary.source = vocabulary.source.clone();
            d
        }
        None => {
            let encoded = Dictionary::encode(&clip, &vocabulary, |done, total| {
                progress(job, "encoding concepts", done as u64, total as u64, ProgressUnit::Items);
                !is_cancelled(job)
            })
            .await;
            match encoded {
                Ok(d) => {
                    if let Some(c) = &cache {
                        c.put(&key, &d.to_bytes()).await;
                    }
                    d
                }
                Err(_) if is_cancelled(job) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let info = dictionary.vocabulary.clone();
    STATE.with_borrow_mut(|s| s.dictionary = Some(Rc::new(dictionary)));
    cliplens_post(FromWorker::ConceptsReady { job, vocabulary: info, from_cache, seconds: (now_ms() - start) / 1000.0 });
    Ok(())
}

fn cliplens_post(message: FromWorker) {
    crate::start::post(&message);
}

fn dictionary() -> Result<Rc<Dictionary>, String> {
    STATE.with_borrow(|s| s.dictionary.clone()).ok_or_else(|| "choose a vocabulary first: no concept dictionary is ready".into())
}

/// The centre: the model's own, SpLiCE's for its name, else the embeddings'.
fn mean_for(embeds: &[Vec<f32>]) -> Result<ImageMean, String> {
    let clip = loaded_clip()?;
    let own = STATE.with_borrow(|s| s.image_mean.clone());
    Ok(ImageMean::default_for(own, &clip.name, embeds, "the images on this page"))
}

async fn run(job: JobId, embeds: &[Vec<f32>], sparsity: Sparsity, mean: &ImageMean) -> Result<Option<Vec<Decomposition>>, String> {
    let dictionary = dictionary()?;
    let device = STATE.with_borrow(|s| s.device.clone()).ok_or("the worker has no device yet")?;
    let on_device = dictionary.on_device(&device);
    let total = embeds.len() as u64;
    let out = decompose(&dictionary, &on_device, mean, embeds, sparsity, |done, _| {
        progress(job, "decomposing", done as u64, total, ProgressUnit::Items);
        !is_cancelled(job)
    })
    .await;
    match out {
        Ok(d) => Ok(Some(d)),
        Err(_) if is_cancelled(job) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn decompose_job(job: JobId, embeds: &[Vec<f32>], split: usize, sparsity: Sparsity) -> Result<(), String> {
    let start = now_ms();
    let dictionary = dictionary()?;
    let mean = mean_for(embeds)?;
    let Some(decompositions) = run(job, embeds, sparsity, &mean).await? else { return Ok(()) };
    let split = split.min(decompositions.len());
    let (a, b) = decompositions.split_at(split);
    let results = decompositions
        .iter()
        .map(|d| DecompositionResult {
            concepts: d.concepts(&dictionary),
            cosine: d.cosine,
            lambda: d.lambda,
            l0: d.l0(),
            objective: d.objective,
            recomposed: d.recomposed.clone(),
        })
        .collect();
    let collection = CollectionDecomposition {
        image_mean: mean.info(),
        vocabulary: dictionary.vocabulary.clone(),
        results,
        histogram: histogram(a, &dictionary),
        shifts: (!b.is_empty()).then(|| compare(a, b, &dictionary)),
        seconds: (now_ms() - start) / 1000.0,
    };
    cliplens_post(FromWorker::Decomposed { job, collection });
    Ok(())
}

pub async fn intervene_job(job: JobId, embeds: &[Vec<f32>], sparsity: Sparsity, remove: &[String], prompts: &[String]) -> Result<(), String> {
    let dictionary = dictionary()?;
    let clip = loaded_clip()?;
    let removed = remove
        .iter()
        .map(|w| dictionary.index_of(w).ok_or_else(|| format!("\"{w}\" is not in the vocabulary {}", dictionary.vocabulary.source)))
        .collect::<Result<Vec<_>, _>>()?;
    if prompts.len() < 2 {
        return Err("give at least two prompts to choose between".into());
    }
    let mean = mean_for(embeds)?;
    let Some(decompositions) = run(job, embeds, sparsity, &mean).await? else { return Ok(()) };
    let prompt_embeds = clip.embed_texts(prompts).await.map_err(|e| e.to_string())?.embeds;
    let intervention = intervene(&decompositions, &removed, &dictionary, &mean, prompts, &prompt_embeds);
    cliplens_post(FromWorker::Intervened { job, intervention });
    Ok(())
}
