//! Native-only helpers for the command line: reading model directories and
//! choosing a compute device.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::clip::{ModelFiles, NoWeights, pick_weights};
use crate::manifest::{MANIFEST_VERSION, Manifest};
use crate::error::{Error, Result};

/// Compute backend for the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// burn's Flex CPU backend.
    Cpu,
    /// burn-wgpu (Vulkan, Metal or DX12; lavapipe works where no GPU is).
    Wgpu,
}

/// The device for `backend`. wgpu is initialized once per process (a second
/// initialization panics in burn), so later calls share the first device.
pub fn device(backend: Backend) -> Result<Device> {
    static WGPU: std::sync::OnceLock<std::result::Result<Device, String>> = std::sync::OnceLock::new();
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        Backend::Wgpu => WGPU
            .get_or_init(|| Device::wgpu_options().init().map_err(|e| format!("{e:?}")))
            .clone()
            .map_err(|e| Error::device(format!("no usable wgpu adapter ({e}); try --backend cpu"))),
    }
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))
}

/// The weights file of a model directory, by the rule of [`pick_weights`]
/// (the float checkpoint first).
fn weights_in(dir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let found: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    let names: Vec<String> = found.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let i = pick_weights(&refs, false).map_err(|e| {
        let message = match e {
            NoWeights::None => "holds no .safetensors weights file",
            NoWeights::Several => "holds several .safetensors files: pass the one to use as --model DIR/FILE.safetensors",
        };
        Error::usage(dir.display().to_string(), message)
    })?;
    Ok(found[i].clone())
}

/// Reads a model given as a directory (`config.json`, `tokenizer.json`,
/// weights, optional `preprocessor_config.json`) or as a weights file with
/// those files beside it.
pub fn read_model(path: &Path) -> Result<ModelFiles> {
    let (dir, weights) = if path.is_dir() {
        (path.to_path_buf(), weights_in(path)?)
    } else if path.is_file() {
        (path.parent().map(Path::to_path_buf).unwrap_or_default(), path.to_path_buf())
    } else {
        return Err(Error::usage(path.display().to_string(), "no such model directory or weights file"));
    };
    let weights = (weights.display().to_string(), read(&weights)?);
    read_model_beside(&dir, weights)
}

/// The model whose config and tokenizer lie in `dir`, with weights already in memory.
pub fn read_model_beside(dir: &Path, weights: (String, Vec<u8>)) -> Result<ModelFiles> {
    let named = |p: PathBuf| -> Result<(String, Vec<u8>)> { Ok((p.display().to_string(), read(&p)?)) };
    let preprocessor = dir.join("preprocessor_config.json");
    Ok(ModelFiles {
        name: dir_name(dir).unwrap_or_else(|| dir.display().to_string()),
        config: named(dir.join("config.json"))?,
        weights,
        tokenizer: named(dir.join("tokenizer.json"))?,
        preprocessor: if preprocessor.is_file() { Some(named(preprocessor)?) } else { None },
    })
}

/// The last component of `dir` once resolved (`.` becomes its real name).
pub fn dir_name(dir: &Path) -> Option<String> {
    dir.canonicalize().ok()?.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The manifest at `path`, or an empty one when there is none yet.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    if path.is_file() {
        Manifest::from_json(&read(path)?, &path.display().to_string())
    } else {
        Ok(Manifest { format_version: MANIFEST_VERSION, models: Vec::new() })
    }
}

pub fn write_manifest(path: &Path, manifest: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(manifest).expect("the manifest serializes") + "\n";
    std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), e))
}

/// The process's peak resident memory (Linux: `VmHWM` of /proc/self/status).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
