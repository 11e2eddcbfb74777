//! `cliplens manifest`: a model directory's files, sizes and sha256 into a
//! site's `models/manifest.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use cliplens::native::read;
use cliplens::{Error, Result};

#[derive(Args)]
pub struct ManifestArgs {
    /// Model id, e.g. world-clip.
    #[arg(long)]
    id: String,
    /// The model directory, beside the manifest.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value = "models/manifest.json")]
    manifest: PathBuf,
    #[arg(long, default_value = "")]
    notes: String,
}

pub fn run(args: ManifestArgs) -> Result<ExitCode> {
    manifest_add(&args.id, &args.dir, &args.manifest, args.notes)
}

/// Files a model directory serves, in the order a browser needs them.
const MODEL_FILES: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "preprocessor_config.json",
    "image_mean.json",
    "model.int8.safetensors",
    "model.safetensors",
];

fn manifest_add(id: &str, dir: &Path, manifest_path: &Path, notes: String) -> Result<ExitCode> {
    use cliplens::manifest::ManifestModel;
    use cliplens::native::{read_manifest, write_manifest};
    let mut manifest = read_manifest(manifest_path)?;
    let files: Vec<(String, Vec<u8>)> = MODEL_FILES
        .iter()
        .filter(|name| dir.join(name).is_file())
        .map(|name| Ok((name.to_string(), read(&dir.join(name))?)))
        .collect::<Result<_>>()?;
    if files.is_empty() {
        return Err(Error::usage(dir.display().to_string(), "holds none of the model files"));
    }
    // Entries name their directory relative to the manifest's.
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let rel = dir.strip_prefix(base).unwrap_or(dir).display().to_string();
    manifest.upsert(ManifestModel::describe(id, &rel, &files, notes));
    write_manifest(manifest_path, &manifest)?;
    eprintln!("{}: {id} with {} files", manifest_path.display(), files.len());
    Ok(ExitCode::SUCCESS)
}
