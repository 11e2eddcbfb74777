//! `cliplens prepare-models`: fetch real CLIP checkpoints from the Hugging
//! Face Hub, verify they load as CLIP, and write int8 files plus a manifest.

use std::io::Read;
use std::path::Path;

use crate::clip::ModelFiles;
use crate::error::{Error, Result};
use crate::manifest::ManifestModel;
use crate::native::{read_manifest, write_manifest};
use crate::quantize::{Provenance, measure_quantization_agreement, quantize_checkpoint, sha256_hex};

pub const DEFAULT_MODELS: [&str; 2] = ["openai/clip-vit-base-patch32", "openai/clip-vit-base-patch16"];
const HUB: &str = "https://huggingface.co";
/// Files copied as they are next to the int8 weights.
const SIDE_FILES: [&str; 3] = ["config.json", "preprocessor_config.json", "tokenizer.json"];

fn download(id: &str, file: &str, log: &mut dyn FnMut(String)) -> Result<Vec<u8>> {
    let url = format!("{HUB}/{id}/resolve/main/{file}");
    let response = ureq::get(&url).call().map_err(|e| {
        Error::usage("prepare-models", format!("cannot download {url} ({e}); this command needs access to huggingface.co"))
    })?;
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&url, format!("download interrupted: {e}")))?;
    log(format!("downloaded {url}: {} bytes", bytes.len()));
    Ok(bytes)
}

pub fn prepare_models(ids: &[String], out: &Path, log: &mut dyn FnMut(String)) -> Result<()> {
    let manifest_path = out.join("manifest.json");
    let mut manifest = read_manifest(&manifest_path)?;
    for id in ids {
        let dir_name = id.rsplit('/').next().unwrap_or(id).to_string();
        let dir = out.join(&dir_name);
        let side: Vec<(String, Vec<u8>)> =
            SIDE_FILES.iter().map(|f| Ok((f.to_string(), download(id, f, log)?))).collect::<Result<_>>()?;
        let weights = download(id, "model.safetensors", log)?;
        let source_sha256 = sha256_hex(&weights);
        let int8 = quantize_checkpoint(&weights, &format!("{id}/model.safetensors"), &Provenance { source_model: id.clone() })?;
        let side_file = |name: &str| side.iter().find(|(n, _)| n == name).expect("downloaded").clone();
        let float_files = ModelFiles {
            name: id.clone(),
            config: side_file("config.json"),
            preprocessor: Some(side_file("preprocessor_config.json")),
            tokenizer: side_file("tokenizer.json"),
            weights: ("model.safetensors".into(), weights),
        };
        let int8_files = float_files.with_weights("model.int8.safetensors".into(), int8.clone());
        // Loading both models checks every tensor's name and shape against the config.
        let agreement =
            pollster::block_on(measure_quantization_agreement(&float_files, &int8_files, &burn::tensor::Device::flex()))?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let written: Vec<(String, Vec<u8>)> =
            side.iter().cloned().chain([("model.int8.safetensors".to_string(), int8)]).collect();
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
