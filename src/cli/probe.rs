//! `cliplens probe ...`: the literature probes. Argument parsing, loading and
//! printing only; the work is the library's `probes` module.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use cliplens::clip::Clip;
use cliplens::compare::prepare_image;
use cliplens::native::{Backend, device, read, read_model};
use cliplens::probes::attribution::{self, AttributionSettings, Baseline};
use cliplens::probes::gap::{self, Classes, GapReport};
use cliplens::world::captions::Task;
use cliplens::{Error, Result};
use serde::Serialize;

#[derive(Subcommand)]
pub enum ProbeCommand {
    /// The modality gap (Liang et al. 2022): how far image and caption embeddings sit apart, a PCA
    /// scatter of both, and retrieval and zero-shot accuracy as the gap is closed or widened.
    Gap(GapArgs),
    /// Where the model looks: gradient x input, integrated gradients and occlusion maps of an
    /// image's similarity to a prompt (or one prompt over another), and each word's share.
    Attribution(AttributionArgs),
    /// Concept association ("When are Lemons Purple?"): in a picture of two objects, does the
    /// model give one object the other's attribute, against the object alone?
    Association(super::probe_pairs::AssociationArgs),
    /// Social perception one attribute at a time (CausalFace): how counterfactual pictures that
    /// differ in one attribute move the cosine with warmth, competence or your own words.
    Social(super::probe_pairs::SocialArgs),
    /// Fooling images (CLIPMasterPrints): one image optimized for many unrelated prompts at once,
    /// against the best real image on each, before and after shifting across the modality gap.
    Fooling(super::probe_fooling::FoolingArgs),
}

#[derive(Args)]
pub struct AttributionArgs {
    /// Model directory (config.json, tokenizer.json, weights) or a weights file beside them.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// The image to explain.
    #[arg(long, required_unless_present = "world", conflicts_with = "world")]
    image: Option<PathBuf>,
    /// What the image is compared with.
    #[arg(long, required_unless_present = "world", conflicts_with = "world")]
    prompt: Option<String>,
    /// A second prompt: the score becomes similarity to --prompt minus similarity to this.
    #[arg(long)]
    contrast: Option<String>,
    /// Check on N fresh world scenes whose role is drawn: the share of a role prompt's positive
    /// attribution inside the figures' cells, and of a background prompt's outside them.
    #[arg(long)]
    world: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// What "no content" is: blur (the picture blurred: colours and layout kept, shapes gone), mean
    /// (the model's mean colour) or black. Default: blur; with --world, blur for role prompts and
    /// mean for background prompts (the background survives a blur).
    #[arg(long)]
    baseline: Option<String>,
    /// Integrated gradients' path points to start with (doubled until complete within 1%).
    #[arg(long, default_value_t = 32)]
    steps: usize,
    /// Occlusion square side in input pixels (default: an eighth of the input).
    #[arg(long)]
    patch: Option<usize>,
    /// Occlusion step (default: half the patch).
    #[arg(long)]
    stride: Option<usize>,
    /// Write the maps over the image, the legend and the word bars here as SVG.
    #[arg(long, conflicts_with = "world")]
    svg: Option<PathBuf>,
    /// Write the maps here as CSV (x, y, one column per method); with --world, one row per scene.
    #[arg(long)]
    csv: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct GapArgs {
    /// Model directory (config.json, tokenizer.json, weights) or a weights file beside them.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Generated world scenes as the pairs (each with its full caption); the zero-shot column
    /// classifies them by --task.
    #[arg(long, conflicts_with_all = ["pairs"])]
    world: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The world's zero-shot task: shape, color, size, pattern, position, background, count, group or role.
    #[arg(long, default_value = "color")]
    task: String,
    /// Your pairs: a CSV with columns `file` and `caption` (file paths relative to the CSV), and
    /// optionally `class`: the zero-shot column then classifies the images among the classes named.
    #[arg(long, required_unless_present = "world")]
    pairs: Option<PathBuf>,
    /// How a class of the CSV's `class` column becomes a zero-shot prompt.
    #[arg(long, default_value = "a photo of a {}")]
    class_template: String,
    /// Shifts along the gap vector (0: as embedded, 1: closed, negative: widened); repeat.
    #[arg(long = "lambda", allow_negative_numbers = true)]
    lambdas: Vec<f64>,
    /// Write the PCA scatter here as SVG.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write the shifts (one row per lambda) here as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct GapRecord {
    probe: &'static str,
    model: String,
    source: String,
    /// Pairs left out, each with its problem.
    problems: Vec<String>,
    #[serde(flatten)]
    report: GapReport,
}

pub fn run(command: ProbeCommand) -> Result<ExitCode> {
    match command {
        ProbeCommand::Gap(args) => run_gap(args),
        ProbeCommand::Attribution(args) => run_attribution(args),
        ProbeCommand::Association(args) => super::probe_pairs::run_association(args),
        ProbeCommand::Social(args) => super::probe_pairs::run_social(args),
        ProbeCommand::Fooling(args) => super::probe_fooling::run_fooling(args),
    }
}

fn run_attribution(args: AttributionArgs) -> Result<ExitCode> {
    let device = device(args.backend)?;
    let clip = Clip::load(&read_model(&args.model)?, &device)?;
    let baseline = args.baseline.as_deref().map(Baseline::parse).transpose().map_err(|e| Error::usage("--baseline", e))?;
    let settings = AttributionSettings {
        baseline: baseline.unwrap_or_default(),
        steps: args.steps,
        max_steps: AttributionSettings::default().max_steps.max(args.steps),
        patch: args.patch,
        stride: args.stride,
        ..AttributionSettings::default()
    };
    settings.check().map_err(|e| Error::usage("probe attribution", e))?;
    let write = |path: &Path, text: String| std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), e));
    if let Some(count) = args.world {
        let progress = async |done: usize, total: usize| {
            if !args.json {
                eprint!("\r  scene {done}/{total}");
            }
            true
        };
        let role_settings = AttributionSettings { baseline: baseline.unwrap_or(Baseline::Blur), ..settings.clone() };
        let background_settings = AttributionSettings { baseline: baseline.unwrap_or(Baseline::Mean), ..settings.clone() };
        let check = pollster::block_on(attribution::world_check(
            &clip,
            args.seed,
            count,
            args.contrast.as_deref(),
            &role_settings,
            &background_settings,
            progress,
        ))?
        .expect("never stopped");
        if !args.json {
            eprintln!();
        }
        if let Some(csv_path) = &args.csv {
            write(csv_path, cliplens::probes::view::ProbeView::world_attribution(&clip.name, &check).csv)?;
        }
        if args.json {
            let record = serde_json::json!({ "probe": "attribution", "model": clip.name, "world": check });
            println!("{}", serde_json::to_string_pretty(&record).map_err(|e| Error::usage("json", e.to_string()))?);
            return Ok(ExitCode::SUCCESS);
        }
        let show = |m: &attribution::PerMethod| {
            format!(
                "gradient x input {:.1}%, integrated gradients {:.1}%, occlusion {:.1}%",
                100.0 * m.gradient_x_input,
                100.0 * m.integrated_gradients,
                100.0 * m.occlusion
            )
        };
        println!("Attribution of {} on {} world scenes (seed {}) whose role is drawn", clip.name, check.scenes.len(), args.seed);
        println!(
            "  baselines: {:?} for role prompts, {:?} for background prompts{}",
            role_settings.baseline,
            background_settings.baseline,
            args.contrast.as_ref().map_or(String::new(), |c| format!("; each prompt over {c:?}"))
        );
        println!("  the figures' cells cover {:.1}% of a picture on average", 100.0 * check.mean_cell_area);
        println!("  role prompts, positive attribution inside the cells: {}", show(&check.mean_role_inside));
        println!("  background prompts, positive attribution outside the cells: {}", show(&check.mean_background_outside));
        println!("  integrated gradients' completeness: within {:.2}% on every map", 100.0 * check.max_completeness_error);
        return Ok(ExitCode::SUCCESS);
    }
    let path = args.image.as_ref().expect("clap requires --image without --world");
    let prompt = args.prompt.as_deref().expect("clap requires --prompt without --world");
    let image = prepare_image(&read(path)?, &path.display().to_string(), &clip.preprocess)?;
    let progress = async |done: usize, total: usize| {
        if !args.json {
            eprint!("\r  pass {done}/{total}");
        }
        true
    };
    let report = pollster::block_on(attribution::attribute(&clip, &image, prompt, args.contrast.as_deref(), &settings, progress))?
        .expect("never stopped");
    if !args.json {
        eprintln!();
    }
    if let Some(svg_path) = &args.svg {
        let input = cliplens::preprocess::resize_and_crop(&image, &clip.preprocess);
        write(svg_path, attribution::report_svg(&report, &input)?)?;
    }
    if let Some(csv_path) = &args.csv {
        write(csv_path, report.csv())?;
    }
    if args.json {
        let record = serde_json::json!({ "probe": "attribution", "model": clip.name, "image": path.display().to_string(), "report": report });
        println!("{}", serde_json::to_string_pretty(&record).map_err(|e| Error::usage("json", e.to_string()))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Attribution of {}'s similarity for {}", clip.name, path.display());
    match &report.contrast {
        Some(c) => println!("  score: cosine with {prompt:?} minus cosine with {c:?} = {:.4}", report.score),
        None => println!("  score: cosine with {prompt:?} = {:.4}", report.score),
    }
    println!("  baseline ({:?}) scores {:.4}", report.settings.baseline, report.baseline_score);
    println!(
        "  integrated gradients: {} steps, sum {:.4} against {:.4} ({:.2}% off)",
        report.ig_steps,
        report.ig_sum,
        report.score - report.baseline_score,
        100.0 * report.completeness_error
    );
    println!("  occlusion: {}-px squares every {} px", report.occlusion_patch, report.occlusion_stride);
    if !report.words.is_empty() {
        println!("  score lost without each word:");
    }
    for w in &report.words {
        println!("    {:>14}  {:+.4}", format!("{:?}", w.word), w.drop);
    }
    if let Some(svg_path) = &args.svg {
        println!("  maps: {}", svg_path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_gap(args: GapArgs) -> Result<ExitCode> {
    let device = device(args.backend)?;
    let clip = Clip::load(&read_model(&args.model)?, &device)?;
    let lambdas = if args.lambdas.is_empty() { gap::DEFAULT_LAMBDAS.to_vec() } else { args.lambdas.clone() };
    let (source, images, captions, classes, problems) = match (args.world, &args.pairs) {
        (Some(count), _) => {
            let task = Task::all()
                .into_iter()
                .find(|t| t.name() == args.task)
                .ok_or_else(|| Error::usage("--task", format!("unknown task {:?}", args.task)))?;
            let (images, captions, classes) = pollster::block_on(gap::world_inputs(&clip, args.seed, count, task))?;
            let source = format!("{count} world scenes (seed {}), zero-shot task {}", args.seed, task.name());
            (source, images, captions, Some(classes), Vec::new())
        }
        (None, Some(csv_path)) => {
            let (images, captions, labels, problems) = embed_pairs(&clip, csv_path)?;
            let classes = if labels.iter().any(Option::is_some) {
                if !args.class_template.contains("{}") {
                    return Err(Error::usage("--class-template", "must contain {} where the class goes"));
                }
                let mut names: Vec<String> = labels.iter().flatten().cloned().collect();
                names.sort();
                names.dedup();
                let prompts: Vec<String> = names.iter().map(|n| args.class_template.replace("{}", n)).collect();
                let embeddings = pollster::block_on(clip.embed_texts(&prompts))?.embeds;
                let labels = labels.iter().map(|l| l.as_ref().and_then(|l| names.iter().position(|n| n == l))).collect();
                Some(Classes { names: prompts, embeddings, labels })
            } else {
                None
            };
            (format!("{} pairs from {}", images.len(), csv_path.display()), images, captions, classes, problems)
        }
        (None, None) => return Err(Error::usage("probe gap", "give --world N or --pairs CSV")),
    };
    for p in &problems {
        eprintln!("skipped: {p}");
    }
    let report = gap::modality_gap(&images, &captions, classes.as_ref(), &lambdas).map_err(|e| Error::usage("probe gap", e))?;
    if let Some(path) = &args.svg {
        std::fs::write(path, gap::scatter_svg(&report)).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, gap::shifts_csv(&report)).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    if args.json {
        let record = GapRecord { probe: "modality gap", model: clip.name.clone(), source, problems, report };
        println!("{}", serde_json::to_string_pretty(&record).map_err(|e| Error::usage("json", e.to_string()))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Modality gap of {} on {source}", clip.name);
    println!(
        "  centroids {:.4} apart (cosine {:.4}; norms: images {:.3}, captions {:.3}); the gap lies {:.0}% along the first principal component",
        report.centroid_distance,
        report.centroid_cosine,
        report.image_centroid_norm,
        report.caption_centroid_norm,
        100.0 * report.gap_on_first_component
    );
    println!(
        "  PCA: {:.0}% and {:.0}% of the variance on the first two components",
        100.0 * report.projection.explained[0],
        100.0 * report.projection.explained[1]
    );
    println!("  {:>7}  {:>17}  {:>17}  {:>18}  {:>18}", "lambda", "centroid distance", "pair cosine", "retrieval top-1", "zero-shot");
    for s in &report.shifts {
        let zero_shot = s.zero_shot_accuracy.map_or("—".to_string(), |a| format!("{:.1}%", 100.0 * a));
        println!(
            "  {:>7.2}  {:>17.4}  {:>17.4}  {:>17.1}%  {:>18}",
            s.lambda,
            s.centroid_distance,
            s.mean_pair_cosine,
            100.0 * s.retrieval_accuracy,
            zero_shot
        );
    }
    if let Some(path) = &args.svg {
        println!("  scatter: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The pairs of a `file,caption[,class]` CSV, embedded, with each image's
/// class (if the column is there and the cell is not empty); a row whose
/// image cannot be read becomes a problem line and the rest go on.
type Pairs = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Option<String>>, Vec<String>);
fn embed_pairs(clip: &Clip, csv_path: &Path) -> Result<Pairs> {
    let origin = csv_path.display().to_string();
    let bytes = read(csv_path)?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
    let headers = reader.headers().map_err(|e| Error::usage(origin.clone(), format!("not a CSV: {e}")))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let (Some(file_col), Some(caption_col)) = (column("file"), column("caption")) else {
        return Err(Error::usage(origin, "needs a header row with the columns `file` and `caption`"));
    };
    let class_col = column("class");
    let base = csv_path.parent().unwrap_or(Path::new("."));
    let mut images = Vec::new();
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(format!("{origin} line {line}: {e}"));
                continue;
            }
        };
        // The reader's own count: blank lines and quoted captions over several lines included.
        let line = record.position().map_or(0, |p| p.line());
        let (Some(file), Some(caption)) = (record.get(file_col), record.get(caption_col)) else {
            problems.push(format!("{origin} line {line}: missing the file or the caption"));
            continue;
        };
        if caption.trim().is_empty() {
            problems.push(format!("{origin} line {line}: empty caption for {file}"));
            continue;
        }
        let path = base.join(file.trim());
        match read(&path).and_then(|b| prepare_image(&b, &path.display().to_string(), &clip.preprocess)) {
            Ok(image) => {
                images.push(image);
                texts.push(caption.trim().to_string());
                labels.push(class_col.and_then(|c| record.get(c)).map(str::trim).filter(|c| !c.is_empty()).map(String::from));
            }
            Err(e) => problems.push(format!("{origin} line {line}: {e}")),
        }
    }
    let mut embeds = Vec::with_capacity(images.len());
    for chunk in images.chunks(64) {
        embeds.extend(pollster::block_on(clip.embed_images(chunk))?);
    }
    let captions = if texts.is_empty() { Vec::new() } else { pollster::block_on(clip.embed_texts(&texts))?.embeds };
    Ok((embeds, captions, labels, problems))
}
