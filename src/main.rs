//! `cliplens`: the command-line face of CLIP Lens. Every study the web app
//! offers runs here too, with `--json` output for scripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "cli/invert.rs"]
mod invert_command;

use cliplens::clip::{Clip, EmbedReport, cosine_matrix};
use cliplens::compare::{prepare_image, prompt_problem, truncation_warning};
use cliplens::native::{Backend, device, dir_name, read, read_model, read_model_beside};
use cliplens::preprocess::RgbImage;
use cliplens::prepare;
use cliplens::quantize::{Provenance, QuantizeReport, quantize_checkpoint, measure_quantization_agreement};
use cliplens::tokenizer::quote;
use cliplens::{Error, Result};

#[derive(Parser)]
#[command(name = "cliplens", version, about = "Look inside CLIP models: embed, compare, invert, quantize")]
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
    /// Optimize an image until the model sees the prompt in it (inversion), and save it as PNG.
    Invert(invert_command::InvertArgs),
    /// Benchmarks, each printed against a named baseline.
    Bench {
        #[command(subcommand)]
        action: BenchCommand,
    },
    /// The synthetic world the embedded model is trained on.
    World {
        #[command(subcommand)]
        action: WorldCommand,
    },
    /// Train a world model from scratch (resumes from OUT/checkpoint if a run was interrupted).
    TrainWorld {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Train the judge (smaller) instead of the embedded model.
        #[arg(long)]
        judge: bool,
        /// Override the number of steps (the published models use the default).
        #[arg(long)]
        steps: Option<usize>,
        #[arg(long, default_value_t = 100)]
        checkpoint_every: usize,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
    },
    /// Add (or refresh) a model directory's entry in a manifest: size and sha256 of each of its files.
    Manifest {
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
    },
    /// Download the real OpenAI CLIP checkpoints, verify them and write int8 files plus a manifest.
    PrepareModels {
        #[arg(long, default_value = "models")]
        out: PathBuf,
        /// Hugging Face ids to prepare.
        #[arg(long = "id", default_values_t = prepare::DEFAULT_MODELS.map(String::from))]
        ids: Vec<String>,
        /// The Hub, or a mirror with the same URL layout.
        #[arg(long, default_value = cliplens::hub::DEFAULT_HUB)]
        hub: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Invert held-out prompts on the embedded world model with production settings and with
    /// plain pixel optimization (the baseline), and let the judge model grade every image.
    Invert(invert_command::BenchInvertArgs),
}

#[derive(Subcommand)]
enum WorldCommand {
    /// Write world images (PNG) and their ground truth (labels.csv).
    Generate {
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Zero-shot accuracy, retrieval and planted-bias tracking on fresh scenes.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 1000)]
        seed: u64,
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Also evaluate this model (e.g. the int8 file) and report the share of zero-shot decisions both make alike.
        #[arg(long)]
        agree_with: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
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
        Command::Invert(args) => invert_command::invert(args),
        Command::Bench { action: BenchCommand::Invert(args) } => invert_command::bench_invert(args),
        Command::World { action: WorldCommand::Generate { seed, count, out } } => world_generate(seed, count, &out),
        Command::World { action: WorldCommand::Eval { model, seed, count, agree_with, json, backend } } => {
            world_eval(&model, seed, count, agree_with.as_deref(), json, backend)
        }
        Command::TrainWorld { seed, out, judge, steps, checkpoint_every, backend } => {
            train_world(seed, &out, judge, steps, checkpoint_every, backend)
        }
        Command::Manifest { id, dir, manifest, notes } => manifest_add(&id, &dir, &manifest, notes),
        Command::PrepareModels { out, ids, hub } => {
            prepare::prepare_models(&ids, &hub, &out, &mut |line| eprintln!("{line}"))?;
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
        // Reduced at once to the model-sized crop, as the web worker does.
        match read(path).and_then(|bytes| prepare_image(&bytes, &name, &clip.preprocess)) {
            Ok(image) => {
                images.push(image);
                image_names.push(name);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut kept_texts = Vec::new();
    for text in texts {
        match prompt_problem(text) {
            Some(problem) => errors.push(problem.to_string()),
            None => kept_texts.push(text.clone()),
        }
    }

    let image_embeds = pollster::block_on(clip.embed_images(&images))?;
    let text_out = pollster::block_on(clip.embed_texts(&kept_texts))?;
    for (text, tokens) in kept_texts.iter().zip(&text_out.tokens) {
        warnings.extend(truncation_warning(text, tokens.dropped_tokens, clip.tokenizer.context_length()));
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

fn world_generate(seed: u64, count: usize, out: &Path) -> Result<ExitCode> {
    use cliplens::world::{ATTRIBUTES, captions::full_caption, render::render, scenes};
    let out_name = out.display().to_string();
    std::fs::create_dir_all(out).map_err(|e| Error::io(&out_name, e))?;
    let mut csv = String::from("file,caption,group,role");
    for attribute in &ATTRIBUTES {
        csv.push(',');
        csv.push_str(attribute.name);
    }
    csv.push('\n');
    let digits = count.saturating_sub(1).to_string().len().max(5);
    for (i, scene) in scenes(seed, count).iter().enumerate() {
        let file = format!("{i:0digits$}.png");
        let image = render(scene);
        let buffer = image::RgbImage::from_raw(image.width as u32, image.height as u32, image.pixels)
            .expect("a rendered scene has width * height pixels");
        let path = out.join(&file);
        buffer.save(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let mut row = vec![file, full_caption(scene), scene.group_word().to_string(), scene.role_word().unwrap_or("").to_string()];
        row.extend((0..ATTRIBUTES.len()).map(|a| scene.value(a).to_string()));
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let labels = out.join("labels.csv");
    std::fs::write(&labels, csv).map_err(|e| Error::io(labels.display().to_string(), e))?;
    eprintln!("wrote {count} images and labels.csv to {out_name}");
    Ok(ExitCode::SUCCESS)
}

fn world_eval(model: &Path, seed: u64, count: usize, agree_with: Option<&Path>, json: bool, backend: Backend) -> Result<ExitCode> {
    use cliplens::world::eval::{decision_agreement, evaluate};
    if count == 0 {
        return Err(Error::usage("--count", "must be at least 1"));
    }
    let device = device(backend)?;
    let clip = Clip::load(&read_model(model)?, &device)?;
    let result = pollster::block_on(evaluate(&clip, seed, count))?;
    let agreement = match agree_with {
        Some(other) => {
            let other_clip = Clip::load(&read_model(other)?, &device)?;
            let other_result = pollster::block_on(evaluate(&other_clip, seed, count))?;
            Some((other.display().to_string(), decision_agreement(&result, &other_result)))
        }
        None => None,
    };
    if json {
        let mut value = serde_json::to_value(&result).expect("the evaluation serializes");
        if let Some((other, share)) = &agreement {
            value["agreement"] = serde_json::json!({"model": other, "zero_shot_decisions_alike": share});
        }
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("model {} on {} fresh scenes (seed {})", result.model, result.count, result.seed);
    println!("zero-shot accuracy");
    for t in result.attributes.iter().chain([&result.group, &result.role]) {
        println!("  {:<11} {:>6.1}%   (chance {:>4.1}%, n = {})", t.task, 100.0 * t.accuracy, 100.0 * t.chance, t.n);
    }
    let r = &result.retrieval;
    println!(
        "retrieval on {} pairs: image->text R@1 {:.1}%  R@5 {:.1}%  text->image R@1 {:.1}%",
        r.pairs,
        100.0 * r.image_to_text_r_at_1,
        100.0 * r.image_to_text_r_at_5,
        100.0 * r.text_to_image_r_at_1
    );
    println!("role words: share of group {} (planted / in the data / classified / counterfactual preference)", result.group_a);
    for b in &result.roles {
        println!(
            "  {:<8} {:>5.0}%  {:>5.0}%  {:>5.0}%  {:>5.0}%   (n = {})",
            b.role,
            100.0 * b.planted_group_a_rate,
            100.0 * b.actual_group_a_share,
            100.0 * b.classified_group_a_rate,
            100.0 * b.counterfactual_group_a_preference,
            b.n
        );
    }
    println!(
        "Spearman rho with the planted rates: classified {:.3}, counterfactual {:.3}",
        result.role_tracking_spearman, result.counterfactual_spearman
    );
    if let Some((other, share)) = agreement {
        println!("zero-shot decisions alike with {other}: {:.2}%", 100.0 * share);
    }
    Ok(ExitCode::SUCCESS)
}

fn train_world(seed: u64, out: &Path, judge: bool, steps: Option<usize>, checkpoint_every: usize, backend: Backend) -> Result<ExitCode> {
    use cliplens::train::{TrainSettings, train};
    use std::io::IsTerminal;
    let mut settings = if judge { TrainSettings::judge(seed) } else { TrainSettings::main(seed) };
    if let Some(steps) = steps {
        settings.steps = steps;
        settings.warmup_steps = settings.warmup_steps.min(steps / 5).max(1);
    }
    let device = device(backend)?;
    let terminal = std::io::stderr().is_terminal();
    let clock = |s: f64| format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64);
    let log = train(&settings, out, &device, checkpoint_every.max(1), |p| {
        if !terminal && p.step % 25 != 0 && p.step > 5 && p.step != p.steps {
            return;
        }
        let width = 30;
        let filled = p.step * width / p.steps.max(1);
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(width - filled));
        let line = format!(
            "step {}/{} [{bar}] loss {:.3}  lr {:.1e}  temp {:.1}  {}  ETA {}",
            p.step, p.steps, p.loss, p.lr, p.temperature, clock(p.seconds), clock(p.eta_seconds)
        );
        if terminal { eprint!("\r{line}") } else { eprintln!("{line}") }
    })?;
    if terminal {
        eprintln!();
    }
    eprintln!("trained {} steps in {}; wrote {}", log.step, clock(log.seconds), out.display());
    Ok(ExitCode::SUCCESS)
}

/// Files a model directory serves, in the order a browser needs them.
const MODEL_FILES: [&str; 5] =
    ["config.json", "tokenizer.json", "preprocessor_config.json", "model.int8.safetensors", "model.safetensors"];

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
