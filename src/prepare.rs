//! `cliplens prepare-models`: fetch real CLIP checkpoints from the Hugging
//! Face Hub, verify they load as CLIP, and write int8 files plus a manifest.

use std::io::Read;
use std::path::Path;

use crate::clip::ModelFiles;
use crate::error::{Error, Result};
use crate::hub::{FLOAT_WEIGHTS, HubModel, INT8_WEIGHTS};
use crate::manifest::ManifestModel;
use crate::native::{read_manifest, write_manifest};
use crate::quantize::{Provenance, measure_quantization_agreement, quantize_checkpoint, sha256_hex};

pub const DEFAULT_MODELS: [&str; 2] = ["openai/clip-vit-base-patch32", "openai/clip-vit-base-patch16"];
/// Files copied as they are next to the int8 weights.
const SIDE_FILES: [&str; 3] = ["config.json", "preprocessor_config.json", "tokenizer.json"];

fn download(hub: &str, model: &HubModel, file: &str, log: &mut dyn FnMut(String)) -> Result<Vec<u8>> {
    let url = model.file_url(hub, file);
    let response = ureq::get(&url)
        .call()
        .map_err(|e| Error::usage("prepare-models", format!("cannot download {url} ({e}); this command needs access to {hub}")))?;
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&url, format!("download interrupted: {e}")))?;
    log(format!("downloaded {url}: {} bytes", bytes.len()));
    Ok(bytes)
}

/// Downloads each of `ids` from `hub` (the Hub, or a mirror with its URL
/// layout), quantizes it and writes it under `out` with its manifest entry.
pub fn prepare_models(ids: &[String], hub: &str, out: &Path, log: &mut dyn FnMut(String)) -> Result<()> {
    let manifest_path = out.join("manifest.json");
    let mut manifest = read_manifest(&manifest_path)?;
    for text in ids {
        let model = HubModel::parse(text).map_err(|e| Error::usage("prepare-models", e))?;
        let id = &model.label();
        let dir_name = model.repo.rsplit('/').next().unwrap_or(id).to_string();
        let dir = out.join(&dir_name);
        let side: Vec<(String, Vec<u8>)> =
            SIDE_FILES.iter().map(|f| Ok((f.to_string(), download(hub, &model, f, log)?))).collect::<Result<_>>()?;
        let weights = download(hub, &model, FLOAT_WEIGHTS, log)?;
        let source_sha256 = sha256_hex(&weights);
        let int8 = quantize_checkpoint(&weights, &format!("{id}/{FLOAT_WEIGHTS}"), &Provenance { source_model: id.clone() })?;
        let side_file = |name: &str| side.iter().find(|(n, _)| n == name).expect("downloaded").clone();
        let float_files = ModelFiles {
            name: id.clone(),
            config: side_file("config.json"),
            preprocessor: Some(side_file("preprocessor_config.json")),
            tokenizer: side_file("tokenizer.json"),
            weights: (FLOAT_WEIGHTS.into(), weights),
        };
        let int8_files = float_files.with_weights(INT8_WEIGHTS.into(), int8.clone());
        // Loading both models checks every tensor's name and shape against the config.
        let agreement =
            pollster::block_on(measure_quantization_agreement(&float_files, &int8_files, &burn::tensor::Device::flex()))?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let written: Vec<(String, Vec<u8>)> =
            side.iter().cloned().chain([(INT8_WEIGHTS.to_string(), int8)]).collect();
        for (name, bytes) in &written {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        let notes = format!(
            "int8 vs float cosine on the probe set: images min {:.4}, prompts min {:.4}",
            agreement.image_cosine_min, agreement.text_cosine_min
        );
        manifest.upsert(ManifestModel {
            source_sha256: Some(source_sha256),
            ..ManifestModel::describe(id, &dir_name, &written, notes)
        });
        log(format!("prepared {id} in {}", dir.display()));
    }
    write_manifest(&manifest_path, &manifest)
}
