//! `cliplens quantize`: CLIP Lens' int8 format from a float checkpoint, with
//! its size and embedding error (the same quantizer the web worker streams).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use cliplens::native::{Backend, device, dir_name, read, read_model_beside};
use cliplens::quantize::{Provenance, QuantizeReport, measure_quantization_agreement, quantize_checkpoint};
use cliplens::{Error, Result};

#[derive(Args)]
pub struct QuantizeArgs {
    /// A float safetensors checkpoint (with config.json and tokenizer.json beside it for the error report).
    input: PathBuf,
    output: PathBuf,
    /// Source model id recorded in the file's metadata (default: the input's directory name).
    #[arg(long)]
    source_id: Option<String>,
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

pub fn run(args: QuantizeArgs) -> Result<ExitCode> {
    let QuantizeArgs { input, output, source_id, json, backend } = args;
    let (input, output) = (input.as_path(), output.as_path());
    let in_name = input.display().to_string();
    let bytes = read(input)?;
    let dir = input.parent().unwrap_or(Path::new("."));
    let source_model = source_id.unwrap_or_else(|| dir_name(dir).unwrap_or_else(|| in_name.clone()));
    let quantized = quantize_checkpoint(&bytes, &in_name, &Provenance { source_model })?;
    std::fs::write(output, &quantized).map_err(|e| Error::io(output.display().to_string(), e))?;
    let mut report = QuantizeReport::sizes(bytes.len(), quantized.len());
    if dir.join("config.json").is_file() && dir.join("tokenizer.json").is_file() {
        let device = device(backend)?;
        // The checkpoint is already in memory: read only the files beside it.
        let float_files = read_model_beside(dir, (in_name.clone(), bytes))?;
        let int8_files = float_files.with_weights(output.display().to_string(), quantized);
        report.agreement = Some(pollster::block_on(measure_quantization_agreement(&float_files, &int8_files, &device))?);
    } else {
        eprintln!("note: no config.json and tokenizer.json beside {in_name}: embedding error not measured");
    }
    if json {
        println!("{}", serde_json::to_string(&report).expect("report serializes"));
    } else {
        println!("{}", report.summary(&in_name, &output.display().to_string()));
    }
    Ok(ExitCode::SUCCESS)
}
