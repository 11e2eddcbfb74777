//! `cliplens`: the command-line face of CLIP Lens. Every study the web app
//! offers runs here too, with `--json` output for scripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cliplens::clip::{Clip, EmbedReport, cosine_matrix};
use cliplens::native::{Backend, device, dir_name, read, read_model, read_model_beside};
use cliplens::preprocess::{RgbImage, decode_image};
use cliplens::prepare;
use cliplens::quantize::{Provenance, QuantizeReport, quantize_checkpoint, measure_quantization_agreement};
use cliplens::tokenizer::quote;
use cliplens::{Error, Result};

#[derive(Parser)]
#[command(name = "cliplens", version, about = "Look inside CLIP models: embed, compare, quantize")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed images and prompts and print their cosine similarity matrix.
    Embed {
        /// Model directory (config.json, tokenizer.json, weights) or a weights file beside them.
        #[arg(long)]
        model: PathBuf,
        /// An image file; repeat for several.
        #[arg(long = "image")]
        images: Vec<PathBuf>,
        /// A prompt; repeat for several.
        #[arg(long = "text")]
        texts: Vec<String>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
    },
    /// Write CLIP Lens' int8 format and report its size and embedding error.
    Quantize {
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
    },
    /// Download the real OpenAI CLIP checkpoints, verify them and write int8 files plus a manifest.
    PrepareModels {
        #[arg(long, default_value = "models")]
        out: PathBuf,
        /// Hugging Face ids to prepare.
        #[arg(long = "id", default_values_t = prepare::DEFAULT_MODELS.map(String::from))]
        ids: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Embed { model, images, texts, json, backend } => embed(&model, &images, &texts, json, backend),
        Command::Quantize { input, output, source_id, json, backend } => {
            quantize(&input, &output, source_id, json, backend)
        }
        Command::PrepareModels { out, ids } => {
            prepare::prepare_models(&ids, &out, &mut |line| eprintln!("{line}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn embed(model: &Path, image_paths: &[PathBuf], texts: &[String], json: bool, backend: Backend) -> Result<ExitCode> {
    if image_paths.is_empty() && texts.is_empty() {
        return Err(Error::usage("embed", "give at least one --image or --text"));
    }
    let device = device(backend)?;
    let clip = Clip::load(&read_model(model)?, &device)?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    // Each bad input is reported and skipped; the rest of the batch goes on.
    let mut images: Vec<RgbImage> = Vec::new();
    let mut image_names = Vec::new();
    for path in image_paths {
        let name = path.display().to_string();
        match read(path).and_then(|bytes| decode_image(&bytes, &name)) {
            Ok(image) => {
                images.push(image);
                image_names.push(name);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut kept_texts = Vec::new();
    for text in texts {
        if text.trim().is_empty() {
            errors.push(Error::prompt(quote(text), "is empty: type something to compare against").to_string());
        } else {
            kept_texts.push(text.clone());
        }
    }

    let image_embeds = pollster::block_on(clip.embed_images(&images))?;
    let text_out = pollster::block_on(clip.embed_texts(&kept_texts))?;
    for (text, tokens) in kept_texts.iter().zip(&text_out.tokens) {
        if tokens.dropped_tokens > 0 {
            warnings.push(format!(
                "{}: too long, the last {} tokens were dropped (CLIP reads {} tokens)",
                quote(text),
                tokens.dropped_tokens,
                clip.tokenizer.context_length()
            ));
        }
    }
    let report = EmbedReport {
        model: clip.name.clone(),
        similarity: cosine_matrix(&image_embeds, &text_out.embeds),
        images: image_names,
        texts: kept_texts,
        image_embeds,
        text_embeds: text_out.embeds,
        logit_scale: pollster::block_on(clip.logit_scale())?,
        errors: errors.clone(),
        warnings: warnings.clone(),
    };
    for line in warnings.iter() {
        eprintln!("warning: {line}");
    }
    for line in errors.iter() {
        eprintln!("error: {line}");
    }
    if json {
        println!("{}", serde_json::to_string(&report).expect("report serializes"));
    } else {
        print_table(&report);
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_table(r: &EmbedReport) {
    println!("model: {}   logit scale: {:.3}", r.model, r.logit_scale);
    let head = |v: &[f32]| v.iter().take(4).map(|x| format!("{x:+.4}")).collect::<Vec<_>>().join(" ");
    for (i, (name, e)) in r.images.iter().zip(&r.image_embeds).enumerate() {
        println!("  I{i} = {name}  [{} ... {} dims]", head(e), e.len());
    }
    for (j, (text, e)) in r.texts.iter().zip(&r.text_embeds).enumerate() {
        println!("  T{j} = {}  [{} ... {} dims]", quote(text), head(e), e.len());
    }
    if r.images.is_empty() || r.texts.is_empty() {
        return;
    }
    println!("\ncosine similarity (rows: images, columns: texts)");
    print!("{:>5}", "");
    for j in 0..r.texts.len() {
        print!(" {:>8}", format!("T{j}"));
    }
    println!();
    for (i, row) in r.similarity.iter().enumerate() {
        print!("{:>5}", format!("I{i}"));
        for v in row {
            print!(" {v:>8.4}");
        }
        println!();
    }
}

fn quantize(input: &Path, output: &Path, source_id: Option<String>, json: bool, backend: Backend) -> Result<ExitCode> {
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
