//! `cliplens invert`: the command-line twin of the Inversion studio.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use cliplens::clip::Clip;
use cliplens::compare::prepare_image;
use cliplens::invert::output::{InversionRecord, inversion_png, record_from_png};
use cliplens::invert::target::{Target, TargetTerm, TermKind, embedding_term, image_term, prompt_terms};
use cliplens::invert::{Inverter, InvertSettings, Parameterization, Preset, finish};
use cliplens::native::{Backend, device, peak_memory_bytes, read, read_model};
use cliplens::{Error, Result};


#[derive(Args)]
pub struct InvertArgs {
    /// Model directory (config.json, tokenizer.json, weights) or a weights file beside them.
    #[arg(long)]
    model: PathBuf,
    /// What the image should show: a prompt, or an expression of weighted prompts
    /// (`a panda + 0.5*a mad scientist - text`). Repeat to add terms.
    #[arg(long = "prompt")]
    prompts: Vec<String>,
    /// Aim at an image's embedding too (weight 1); repeat for several.
    #[arg(long = "target-image")]
    target_images: Vec<PathBuf>,
    /// Aim at an embedding: a JSON file holding an array of numbers (weight 1).
    #[arg(long = "target-embedding")]
    target_embeddings: Vec<PathBuf>,
    /// Starting settings: quick, balanced (default), best or baseline.
    #[arg(long, default_value = "balanced")]
    preset: String,
    /// Settings from a JSON file, or from a PNG this command wrote (to reproduce it); flags below override them.
    #[arg(long)]
    settings: Option<PathBuf>,
    #[arg(long)]
    steps: Option<usize>,
    /// Augmented views per step.
    #[arg(long)]
    views: Option<usize>,
    /// Views per forward/backward pass (memory); the result does not depend on it.
    #[arg(long)]
    micro_batch: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// pixels or fourier.
    #[arg(long)]
    parameterization: Option<String>,
    #[arg(long)]
    lr: Option<f64>,
    /// How fast the mean colour moves (fourier; 1 = Lucid's weighting, presets use 8).
    #[arg(long)]
    mean_color_rate: Option<f32>,
    /// Vivid colours: every colour direction moves as fast as brightness (fourier).
    #[arg(long)]
    vivid: bool,
    /// Total-variation weight.
    #[arg(long)]
    tv: Option<f32>,
    #[arg(long)]
    l1: Option<f32>,
    #[arg(long)]
    l2: Option<f32>,
    /// Turn every augmentation off.
    #[arg(long)]
    no_augment: bool,
    /// Output PNG (the settings go into its metadata).
    #[arg(long)]
    out: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

/// Settings from a JSON file, or from a PNG this tool wrote (with its record).
pub fn settings_file(path: &Path) -> Result<(InvertSettings, Option<InversionRecord>)> {
    let name = path.display().to_string();
    let bytes = read(path)?;
    if bytes.starts_with(b"\x89PNG") {
        let record = record_from_png(&bytes, &name)?;
        Ok((record.settings.clone(), Some(record)))
    } else {
        let s: InvertSettings =
            serde_json::from_slice(&bytes).map_err(|e| Error::usage(&name, format!("is not a settings file: {e}")))?;
        s.check()?;
        Ok((s, None))
    }
}

/// Settings: the preset or a settings file, then the flags; and the record
/// when the settings come from a PNG this command wrote.
fn settings_from(args: &InvertArgs, image_size: usize) -> Result<(InvertSettings, Option<InversionRecord>)> {
    let (mut s, record) = match &args.settings {
        Some(path) => settings_file(path)?,
        None => (Preset::from_name(&args.preset)?.settings_for(image_size), None),
    };
    if let Some(v) = args.steps {
        s.steps = v;
    }
    if let Some(v) = args.views {
        s.views = v;
    }
    if let Some(v) = args.micro_batch {
        s.micro_batch = v;
    }
    if let Some(v) = args.seed {
        s.seed = v;
    }
    if let Some(p) = &args.parameterization {
        s.parameterization = match p.as_str() {
            "pixels" => Parameterization::Pixels,
            "fourier" => Parameterization::Fourier,
            other => return Err(Error::usage("--parameterization", format!("unknown `{other}` (choose pixels or fourier)"))),
        };
    }
    if let Some(v) = args.lr {
        s.learning_rate = v;
    }
    if let Some(v) = args.mean_color_rate {
        s.mean_color_rate = v;
    }
    if args.vivid {
        s.equal_color_rates = true;
    }
    if let Some(v) = args.tv {
        s.tv_weight = v;
    }
    if let Some(v) = args.l1 {
        s.l1_weight = v;
    }
    if let Some(v) = args.l2 {
        s.l2_weight = v;
    }
    if args.no_augment {
        s.augment = cliplens::invert::Augmentations::none();
    }
    s.check()?;
    Ok((s, record))
}

fn read_embedding(path: &Path) -> Result<Vec<f32>> {
    let name = path.display().to_string();
    serde_json::from_slice::<Vec<f32>>(&read(path)?)
        .map_err(|e| Error::usage(&name, format!("is not a JSON array of numbers ({e})")))
}

fn build_target(clip: &Clip, args: &InvertArgs, from_png: Option<&InversionRecord>) -> Result<Target> {
    let mut parts: Vec<(TargetTerm, Vec<f32>)> = Vec::new();
    let mut warnings = Vec::new();
    let mut expressions = args.prompts.clone();
    // Nothing to aim at on the command line: a PNG's own prompts, when it has only prompts.
    let no_target = args.prompts.is_empty() && args.target_images.is_empty() && args.target_embeddings.is_empty();
    if let Some(record) = from_png.filter(|r| no_target && r.target.iter().all(|t| t.kind == TermKind::Text)) {
        expressions.push(record.description.clone());
    }
    for expression in &expressions {
        let (terms, w) = pollster::block_on(prompt_terms(clip, expression))?;
        parts.extend(terms);
        warnings.extend(w);
    }
    for path in &args.target_images {
        let name = path.display().to_string();
        let image = prepare_image(&read(path)?, &name, &clip.preprocess)?;
        parts.push(pollster::block_on(image_term(clip, &name, &image, 1.0))?);
    }
    for path in &args.target_embeddings {
        parts.push(embedding_term(&path.display().to_string(), read_embedding(path)?, 1.0));
    }
    if parts.is_empty() {
        return Err(Error::usage("invert", "give a --prompt, --target-image or --target-embedding to aim at"));
    }
    let mut target = Target::combine(parts)?;
    target.warnings = warnings;
    Ok(target)
}

fn clock(seconds: f64) -> String {
    format!("{}m{:02}s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
}

pub fn run(args: InvertArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let device = device(args.backend)?;
    let clip = Clip::load(&read_model(&args.model)?, &device)?;
    let (settings, from_png) = settings_from(&args, clip.config().vision_config.image_size)?;
    let target = build_target(&clip, &args, from_png.as_ref())?;
    for w in &target.warnings {
        eprintln!("warning: {w}");
    }
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut inverter = Inverter::new(&clip, &target, settings.clone())?;
    while !inverter.done() {
        let r = pollster::block_on(inverter.step())?;
        if (terminal || !args.json) && (terminal || r.step % 20 == 0 || r.step == r.steps) {
            let elapsed = started.elapsed().as_secs_f64();
            let eta = elapsed / r.step as f64 * (r.steps - r.step) as f64;
            let width = 30;
            let filled = r.step * width / r.steps.max(1);
            let line = format!(
                "step {}/{} [{}{}] similarity {:.4}  {} px  {}  ETA {}",
                r.step,
                r.steps,
                "#".repeat(filled),
                ".".repeat(width - filled),
                r.similarity,
                r.resolution,
                clock(elapsed),
                clock(eta)
            );
            if terminal { eprint!("\r{line}") } else { eprintln!("{line}") }
        }
    }
    if terminal {
        eprintln!();
    }
    let result = pollster::block_on(finish(&clip, &inverter, false))?;
    let seconds = started.elapsed().as_secs_f64();
    let backend = format!("{:?}", args.backend).to_lowercase();
    let record = pollster::block_on(InversionRecord::of(&clip, &target, &result, settings, seconds, backend))?;
    let png = inversion_png(&result.image, &record)?;
    std::fs::write(&args.out, png).map_err(|e| Error::io(args.out.display().to_string(), e))?;
    let peak = peak_memory_bytes();
    if args.json {
        let mut value = serde_json::to_value(&record).expect("the record serializes");
        value["out"] = serde_json::json!(args.out.display().to_string());
        value["peak_rss_bytes"] = serde_json::json!(peak);
        println!("{value}");
    } else {
        println!(
            "wrote {} ({}x{} px): similarity {:.4} to \"{}\" after {} steps in {:.1} s ({:.1} steps/s{})",
            args.out.display(),
            result.image.width,
            result.image.height,
            record.similarity,
            record.description,
            record.steps_done,
            seconds,
            record.steps_per_second,
            peak.map(|b| format!(", peak memory {:.0} MB", b as f64 / 1e6)).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
