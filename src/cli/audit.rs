//! `cliplens audit ...`: the twins of the Audit page. Argument parsing,
//! loading and printing only; the work is the library's `audit` module.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use cliplens::audit::associations::{self, AssociationSpec, PromptSet};
use cliplens::audit::debias::{self, HeadSettings};
use cliplens::audit::folder::{self, AttributeSpec, Features, FolderReport, FolderSettings, UserTables};
use cliplens::audit::probe::{self, ProbeSettings};
use cliplens::audit::report::{self, AuditKind, AuditRecord, ModelInfo};
use cliplens::audit::safety::SafetyDetector;
use cliplens::audit::tables::{self, Table};
use cliplens::clip::Clip;
use cliplens::compare::prepare_image;
use cliplens::invert::Preset;
use cliplens::invert::output::encode_png;
use cliplens::native::{Backend, device, dir_name, read, read_model};
use cliplens::quantize::sha256_hex;
use cliplens::{Error, Result};

use super::concepts::images_in;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Prompt association tests: the WEAT of X and Y against A and B, and each target word against A and B.
    Associations(AssociationsArgs),
    /// Audit a folder of images: CLIP-perceived composition, pseudo-groups, agreement with labels, your model per group, retrieval skew, resampling weights.
    Folder(FolderArgs),
    /// Train a small classifier on a folder three ways (ERM, CLIP-debias resampling, the oracle) and compare worst-group accuracy.
    Debias(DebiasArgs),
    /// Invert neutral prompts with several seeds and let a second model say which group each image shows.
    Probe(ProbeArgs),
    /// One self-contained HTML report (and optionally CSV) from saved audits (`--json` outputs); two of a kind are compared.
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ModelArgs {
    /// Model directory (config.json, tokenizer.json, weights) or a weights file beside them.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

#[derive(Args)]
pub struct AssociationsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Target set X: one prompt per line, embedded as written.
    #[arg(long, requires = "y")]
    x: Option<PathBuf>,
    /// Target set Y.
    #[arg(long, requires = "x")]
    y: Option<PathBuf>,
    /// Attribute set A.
    #[arg(long, requires = "b")]
    a: Option<PathBuf>,
    /// Attribute set B.
    #[arg(long, requires = "a")]
    b: Option<PathBuf>,
    /// Line i of A and line i of B are the same phrase (a paired per-target test).
    #[arg(long)]
    paired: bool,
    /// Random re-partitions when exact enumeration would be larger.
    #[arg(long, default_value_t = associations::DEFAULT_PERMUTATIONS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    permutations: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FolderOptions {
    #[command(flatten)]
    model: ModelArgs,
    /// The images (png, jpg, webp, gif, bmp, tiff), by name.
    #[arg(long)]
    dir: PathBuf,
    /// A sensitive attribute as NAME=value1,value2[,...]; repeat for intersections. Default for world models: group=glim,vorn.
    #[arg(long = "attribute")]
    attributes: Vec<String>,
    /// A prompt template with {} for the value; repeat for an ensemble. Default: people (real CLIP) or figures (world).
    #[arg(long = "template")]
    templates: Vec<String>,
    /// Clusters (pseudo-groups); default the number of value combinations.
    #[arg(long)]
    k: Option<usize>,
    /// k-means++ restarts.
    #[arg(long, default_value_t = 10)]
    restarts: usize,
    /// Cluster on the image embeddings instead of the prompt similarities.
    #[arg(long)]
    image_features: bool,
    /// labels.csv: a `file` column and one column per attribute (named as the attribute).
    #[arg(long)]
    labels: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub struct FolderArgs {
    #[command(flatten)]
    options: FolderOptions,
    /// Your model's predictions: columns file, label, prediction (and optionally loss).
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// A neutral query for retrieval skew; repeat for several.
    #[arg(long = "query")]
    queries: Vec<String>,
    /// Top k for retrieval skew (default min(1000, images / 2)).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    top_k: Option<u64>,
    /// Abstain when the perceived value's probability is below this.
    #[arg(long, default_value_t = 0.6)]
    abstain_below: f64,
    /// Temperature of the loss-weighted resampling weights (with --predictions).
    #[arg(long, default_value_t = 0.1)]
    temperature: f64,
    /// The label counted as positive for parity (default: the last in sorted order).
    #[arg(long)]
    positive: Option<String>,
    /// Write the resampling weights (file,weight) to this CSV.
    #[arg(long)]
    weights_csv: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DebiasArgs {
    #[command(flatten)]
    options: FolderOptions,
    /// The labels column the classifier learns.
    #[arg(long)]
    target: String,
    /// The labels column with the true sensitive group, for the oracle and the evaluation (default: the attribute's name, if a column).
    #[arg(long)]
    group: Option<String>,
    #[arg(long, default_value_t = HeadSettings::default().epochs)]
    epochs: usize,
    /// Share of images held out for scoring.
    #[arg(long, default_value_t = HeadSettings::default().test_share)]
    test_share: f64,
    /// Temperature of the loss-weighted variant (cell mass ∝ exp(ERM's error / T)).
    #[arg(long, default_value_t = HeadSettings::default().temperature)]
    temperature: f64,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The model that judges the images (a different one: the world's judge, or a second CLIP). Default: the model itself, with a warning.
    #[arg(long)]
    judge: Option<PathBuf>,
    /// A neutral prompt to invert; repeat for several.
    #[arg(long = "prompt", required = true)]
    prompts: Vec<String>,
    /// Inversions per prompt (seeds first-seed, first-seed + 1, ...).
    #[arg(long, default_value_t = 8)]
    seeds: usize,
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Also invert this reference prompt (default: a neutral one for the model's kind; "" for none).
    #[arg(long)]
    baseline: Option<String>,
    /// What the judge reads, as NAME=value1,value2. Default for world models: group=glim,vorn; else gender=man,woman.
    #[arg(long)]
    attribute: Option<String>,
    #[arg(long = "template")]
    templates: Vec<String>,
    #[arg(long, default_value = "quick")]
    preset: String,
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    views: Option<usize>,
    /// NSFW drift (off unless given): LAION's safety detector, `clip_autokeras_nsfw_b32.zip` from
    /// LAION-AI/CLIP-based-NSFW-Detector, scores every inversion; needs an OpenAI ViT-B/32 as judge or model.
    #[arg(long, value_name = "DETECTOR.zip")]
    nsfw: Option<PathBuf>,
    /// Write each inversion as PNG into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    /// A saved audit (`cliplens audit ... --json > a.json`) or an earlier HTML report; repeat for several.
    #[arg(long = "in", required = true)]
    inputs: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Also write the headline figures as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
}

pub fn run(command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Associations(args) => run_associations(args),
        AuditCommand::Folder(args) => run_folder(args),
        AuditCommand::Debias(args) => run_debias(args),
        AuditCommand::Probe(args) => run_probe(args),
        AuditCommand::Report(args) => run_report(args),
    }
}

struct Loaded {
    clip: Clip,
    info: ModelInfo,
    is_world: bool,
    device: burn::tensor::Device,
}

fn load(args: &ModelArgs) -> Result<Loaded> {
    load_path(&args.model, args.backend)
}

fn load_path(path: &Path, backend: Backend) -> Result<Loaded> {
    let device = device(backend)?;
    let files = read_model(path)?;
    let sha256 = sha256_hex(&files.weights.1);
    let clip = Clip::load(&files, &device)?;
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let name = dir_name(&dir).unwrap_or_else(|| clip.name.clone());
    Ok(Loaded { clip, info: ModelInfo { name, sha256 }, is_world: dir.join("world.json").is_file(), device })
}

fn print_json(record: &AuditRecord) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(record).map_err(|e| Error::usage("json", e.to_string()))?);
    Ok(())
}

fn lines(path: &Path) -> Result<Vec<String>> {
    let text = String::from_utf8(read(path)?).map_err(|_| Error::usage(path.display().to_string(), "is not UTF-8 text"))?;
    let lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if lines.is_empty() {
        return Err(Error::usage(path.display().to_string(), "has no prompts (one per line)"));
    }
    Ok(lines)
}

fn set_from(path: &Path) -> Result<PromptSet> {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("set").to_string();
    Ok(PromptSet::new(&name, lines(path)?))
}

fn run_associations(args: AssociationsArgs) -> Result<ExitCode> {
    let m = load(&args.model)?;
    let mut spec = if m.is_world { AssociationSpec::world() } else { AssociationSpec::gender_professions() };
    if let (Some(a), Some(b)) = (&args.a, &args.b) {
        spec.attribute_a = set_from(a)?;
        spec.attribute_b = set_from(b)?;
        spec.paired = args.paired;
    }
    if let (Some(x), Some(y)) = (&args.x, &args.y) {
        let (x, y) = (set_from(x)?, set_from(y)?);
        // Each prompt of X and Y is also a target of its own.
        spec.targets = x.prompts.iter().chain(&y.prompts).map(|p| PromptSet::new(p, vec![p.clone()])).collect();
        spec.weat = Some((x, y));
    }
    spec.permutations = args.permutations as usize;
    spec.seed = args.seed;
    let r = pollster::block_on(associations::study(&m.clip, &spec))?;
    if args.json {
        // The WEAT's figures at the top level, as the interface names them.
        let mut record = AuditRecord::new(AuditKind::Associations, m.info, None, &r)?;
        if let (Some(w), Some((x, y))) = (&r.weat, &spec.weat) {
            let s: serde_json::Map<String, serde_json::Value> =
                x.prompts.iter().zip(&w.s_x).chain(y.prompts.iter().zip(&w.s_y)).map(|(p, v)| (p.clone(), (*v).into())).collect();
            let obj = record.result.as_object_mut().expect("a report is an object");
            obj.insert("d".into(), w.d.into());
            obj.insert("p_value".into(), w.p_value.into());
            obj.insert("permutations".into(), w.permutations.into());
            obj.insert("exact".into(), w.exact.into());
            obj.insert("s".into(), s.into());
        }
        print_json(&record)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: each target against A = {} ({} prompts) and B = {} ({} prompts{})",
        m.info.name,
        spec.attribute_a.name,
        spec.attribute_a.prompts.len(),
        spec.attribute_b.name,
        spec.attribute_b.prompts.len(),
        if spec.paired { ", matched" } else { "" }
    );
    println!("{:<28} {:>8} {:>7} {:>9}  {:<16} P({}) [95% CI]", "target", "s", "d", "p", "effect", spec.attribute_a.name);
    for (t, z) in r.targets.iter().zip(&r.zero_shot) {
        println!(
            "{:<28} {:>+8.4} {:>+7.2} {:>9.4}  {:<16} {:.1}% [{:.1}, {:.1}]{}",
            t.target,
            t.s,
            t.d,
            t.test.p_value,
            t.size,
            100.0 * z.probability_a.value,
            100.0 * z.probability_a.ci95[0],
            100.0 * z.probability_a.ci95[1],
            if t.flagged { "  FLAGGED" } else { "" }
        );
    }
    if let (Some(w), Some((x, y))) = (&r.weat, &spec.weat) {
        println!(
            "WEAT {} vs {}: d = {:+.3}, one-sided p = {:.5} ({} re-partitions, {})",
            x.name,
            y.name,
            w.d,
            w.p_value,
            w.permutations,
            if w.exact { "exact" } else { "random" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// File names, their embeddings, and a problem line per image that could not be read.
type EmbeddedFolder = (Vec<String>, Vec<Vec<f32>>, Vec<String>);

/// A folder's images read and embedded; a bad one becomes a problem line.
fn embed_folder(clip: &Clip, dir: &Path) -> Result<EmbeddedFolder> {
    let paths = images_in(dir)?;
    if paths.is_empty() {
        return Err(Error::usage(dir.display().to_string(), "holds no images (png, jpg, webp, gif, bmp, tiff)"));
    }
    let mut names = Vec::new();
    let mut embeds = Vec::new();
    let mut problems = Vec::new();
    for chunk in paths.chunks(64) {
        let mut images = Vec::new();
        for path in chunk {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            match read(path).and_then(|bytes| prepare_image(&bytes, &path.display().to_string(), &clip.preprocess)) {
                Ok(image) => {
                    images.push(image);
                    names.push(name);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        embeds.extend(pollster::block_on(clip.embed_images(&images))?);
    }
    Ok((names, embeds, problems))
}

fn attributes(options: &FolderOptions, is_world: bool) -> Result<Vec<AttributeSpec>> {
    let templates = if options.templates.is_empty() { folder::default_templates(is_world) } else { options.templates.clone() };
    if let Some(t) = templates.iter().find(|t| !t.contains("{}")) {
        return Err(Error::usage(format!("--template {t:?}"), "needs {} where the value goes"));
    }
    let texts = match (options.attributes.is_empty(), is_world) {
        (false, _) => options.attributes.clone(),
        (true, true) => vec!["group=glim,vorn".to_string()],
        (true, false) => {
            return Err(Error::usage("--attribute", "name the attribute to infer, e.g. --attribute gender=man,woman"));
        }
    };
    texts.iter().map(|t| AttributeSpec::parse(t, templates.clone())).collect()
}

/// An optional CSV, read and parsed; see [`tables::or_problem`].
fn table(path: Option<&PathBuf>, required: &[&str], problems: &mut Vec<String>) -> Option<Table> {
    let path = path?;
    let origin = path.display().to_string();
    tables::or_problem(read(path).and_then(|bytes| Table::parse(&bytes, &origin, required)), problems)
}

fn folder_audit(
    m: &Loaded,
    options: &FolderOptions,
    tune: impl FnOnce(&mut FolderSettings),
    predictions: Option<&PathBuf>,
) -> Result<(FolderReport, Vec<String>, Vec<Vec<f32>>)> {
    let attributes = attributes(options, m.is_world)?;
    let mut settings = FolderSettings::new(attributes, options.seed);
    if let Some(k) = options.k {
        settings.k = k;
    }
    settings.restarts = options.restarts;
    if options.image_features {
        settings.features = Features::ImageEmbedding;
    }
    tune(&mut settings);
    let (files, embeds, mut problems) = embed_folder(&m.clip, &options.dir)?;
    let labels = table(options.labels.as_ref(), &[], &mut problems);
    let predictions = table(predictions, &["label", "prediction"], &mut problems);
    let prompts = pollster::block_on(folder::embed_prompts(&m.clip, &settings))?;
    let report = folder::audit(&files, &embeds, &prompts, &settings, UserTables { labels, predictions, problems })?;
    Ok((report, files, embeds))
}

fn run_folder(args: FolderArgs) -> Result<ExitCode> {
    let m = load(&args.options.model)?;
    let (report, _, _) = folder_audit(
        &m,
        &args.options,
        |s| {
            s.queries = args.queries.clone();
            s.top_k = args.top_k.map(|k| k as usize);
            s.abstain_below = args.abstain_below;
            s.temperature = args.temperature;
            s.positive = args.positive.clone();
        },
        args.predictions.as_ref(),
    )?;
    if let Some(path) = &args.weights_csv {
        let mut csv = String::from("file,weight\n");
        for (file, w) in &report.weights {
            csv += &format!("\"{}\",{w}\n", file.replace('"', "\"\""));
        }
        std::fs::write(path, csv).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    if args.json {
        print_json(&AuditRecord::new(AuditKind::Folder, m.info, None, &report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} images of {}; {}", report.images, args.options.dir.display(), folder::PERCEIVED_NOTE);
    for c in &report.composition {
        println!("CLIP-perceived {} ({} abstained):", c.attribute, c.abstained);
        for v in &c.values {
            println!(
                "  {:<20} {:>6}  {:.1}% [{:.1}, {:.1}]",
                v.value,
                v.count,
                100.0 * v.share.value,
                100.0 * v.share.ci95[0],
                100.0 * v.share.ci95[1]
            );
        }
    }
    println!("pseudo-groups (k = {}):", report.clustering.k);
    for g in &report.groups {
        let acc = g.metrics.as_ref().map_or(String::new(), |m| format!("  accuracy {:.1}%", 100.0 * m.accuracy.value));
        println!("  {:<40} {:>6}{acc}", g.name, g.n);
    }
    if let (Some(ari), Some(ami)) = (report.ari, report.ami) {
        println!("against the labels: ARI {ari:.3}, AMI {ami:.3}");
    }
    if let Some(f) = &report.fairness {
        println!(
            "your model: overall {:.1}%, worst pseudo-group {:.1}% ({}), DP difference {:.3}, EO difference {:.3}",
            100.0 * f.overall_accuracy.value,
            100.0 * f.worst_group_accuracy.value,
            f.worst_group.as_deref().unwrap_or("-"),
            f.demographic_parity_difference.value,
            f.equalized_odds_difference.value
        );
    }
    for s in &report.retrieval {
        println!(
            "{:?} top {} by {} vs {}: MaxSkew {:+.3} ({}), NDKL {:.4}",
            s.query, s.k, s.grouping, s.target, s.max_skew, s.max_skew_group, s.ndkl
        );
    }
    for line in report.problems.iter().chain(&report.warnings) {
        eprintln!("warning: {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_debias(args: DebiasArgs) -> Result<ExitCode> {
    let m = load(&args.options.model)?;
    let labels_path =
        args.options.labels.clone().ok_or_else(|| Error::usage("--labels", "debias needs a labels CSV with the target column"))?;
    let (report, files, embeds) = folder_audit(&m, &args.options, |_| {}, None)?;
    let origin = labels_path.display().to_string();
    // Its row problems are in the folder audit's already.
    let (table, _) = Table::parse(&read(&labels_path)?, &origin, &[args.target.as_str()])?;
    if let Some(g) = &args.group
        && table.column(g).is_none()
    {
        return Err(Error::usage(format!("{origin}: line 1"), format!("no column {g:?} for --group (the header has: {})", table.columns.join(", "))));
    }
    let settings = HeadSettings {
        epochs: args.epochs,
        test_share: args.test_share,
        temperature: args.temperature,
        seed: args.options.seed,
        ..HeadSettings::default()
    };
    let out =
        pollster::block_on(debias::on_folder(&m.device, &files, &embeds, &report, &table, &args.target, args.group.as_deref(), &settings))?;
    let result = &out.debias;
    if args.json {
        print_json(&AuditRecord::new(AuditKind::Debias, m.info, None, &out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "target {:?}: {} training, {} held-out images; worst group over {}; pseudo-groups ARI {}",
        args.target,
        result.train_items,
        result.test_items,
        result.evaluation_groups,
        report.ari.map_or("-".into(), |a| format!("{a:.3}"))
    );
    println!(
        "{:<18} {:>22} {:>26}  {:<24} {:>8} {:>8}",
        "method", "overall [95% CI]", "worst group [95% CI]", "worst group", "DP diff", "EO diff"
    );
    for r in &result.methods {
        let p =
            |e: &cliplens::audit::stats::Estimate| format!("{:.1}% [{:.1}, {:.1}]", 100.0 * e.value, 100.0 * e.ci95[0], 100.0 * e.ci95[1]);
        println!(
            "{:<18} {:>22} {:>26}  {:<24} {:>8.3} {:>8.3}",
            r.method,
            p(&r.overall_accuracy),
            p(&r.worst_group_accuracy),
            r.worst_group,
            r.fairness.demographic_parity_difference.value,
            r.fairness.equalized_odds_difference.value
        );
    }
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_probe(args: ProbeArgs) -> Result<ExitCode> {
    let m = load(&args.model)?;
    let judge = match &args.judge {
        Some(path) => Some(load_path(path, args.model.backend)?),
        None => None,
    };
    let templates = if args.templates.is_empty() { folder::default_templates(m.is_world) } else { args.templates.clone() };
    let attribute = args.attribute.clone().unwrap_or_else(|| if m.is_world { "group=glim,vorn".into() } else { "gender=man,woman".into() });
    let attribute = AttributeSpec::parse(&attribute, templates)?;
    let mut invert = Preset::from_name(&args.preset)?.settings_for(m.clip.config().vision_config.image_size);
    if let Some(s) = args.steps {
        invert.steps = s;
    }
    if let Some(v) = args.views {
        invert.views = v;
        invert.micro_batch = invert.micro_batch.min(v);
    }
    invert.check()?;
    let baseline = match &args.baseline {
        Some(b) => Some(b.clone()),
        None => Some(if m.is_world { "a photo of a figure".into() } else { "a photo of a person".into() }),
    };
    let settings = ProbeSettings {
        prompts: args.prompts.clone(),
        baseline,
        seeds: args.seeds,
        first_seed: args.first_seed,
        attribute,
        invert,
        resamples: cliplens::audit::stats::DEFAULT_RESAMPLES,
        self_judged: judge.is_none(),
        safety_detector: None,
    };
    let detector = match &args.nsfw {
        Some(path) => Some(SafetyDetector::from_zip(&read(path)?, &path.display().to_string())?),
        None => None,
    };
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out.display().to_string(), e))?;
    }
    let judge_clip = judge.as_ref().map_or(&m.clip, |j| &j.clip);
    let mut write_error = None;
    let report = pollster::block_on(probe::probe(&m.clip, judge_clip, &settings, detector.as_ref(), |img, done, total| {
        if !args.json {
            let nsfw = img.nsfw.map_or(String::new(), |p| format!(", NSFW {p:.3}"));
            eprintln!("[{done}/{total}] {:?} seed {}: judged {}{nsfw}", img.prompt, img.seed, img.judged);
        }
        if let (Some(out), Some(image)) = (&args.out, &img.image) {
            let slug: String = img.prompt.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
            let path = out.join(format!("{slug}-seed{}.png", img.seed));
            if let Err(e) =
                encode_png(image, &[]).and_then(|b| std::fs::write(&path, b).map_err(|e| Error::io(path.display().to_string(), e)))
            {
                write_error = Some(e);
                return false;
            }
        }
        true
    }))?;
    if let Some(e) = write_error {
        return Err(e);
    }
    if args.json {
        print_json(&AuditRecord::new(AuditKind::Probe, m.info, judge.map(|j| j.info), &report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<36} {:>4}  {}", "prompt", "n", settings.attribute.values.iter().map(|v| format!("{v:>22}")).collect::<String>());
    for p in &report.prompts {
        let shares: String = p
            .shares
            .iter()
            .map(|(_, e)| format!("{:>22}", format!("{:.0}% [{:.0}, {:.0}]", 100.0 * e.value, 100.0 * e.ci95[0], 100.0 * e.ci95[1])))
            .collect();
        println!("{:<36} {:>4}  {shares}", format!("{}{}", p.prompt, if p.baseline { " (baseline)" } else { "" }), p.n);
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_report(args: ReportArgs) -> Result<ExitCode> {
    let mut records = Vec::new();
    let mut names = Vec::new();
    for path in &args.inputs {
        let origin = path.display().to_string();
        let bytes = read(path)?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("audit").to_string();
        if bytes.trim_ascii_start().starts_with(b"<") {
            let text = String::from_utf8_lossy(&bytes);
            for (i, r) in report::records_from_html(&text, &origin)?.into_iter().enumerate() {
                records.push(r);
                names.push(format!("{name} #{}", i + 1));
            }
        } else {
            records.push(AuditRecord::parse(&bytes, &origin)?);
            names.push(name);
        }
    }
    let html = report::html(&records, &names)?;
    std::fs::write(&args.out, html).map_err(|e| Error::io(args.out.display().to_string(), e))?;
    if let Some(path) = &args.csv {
        std::fs::write(path, report::csv(&records, &names)?).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    eprintln!("wrote {} ({} audit{})", args.out.display(), records.len(), if records.len() == 1 { "" } else { "s" });
    Ok(ExitCode::SUCCESS)
}
