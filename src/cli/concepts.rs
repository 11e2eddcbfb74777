//! `cliplens decompose` and `cliplens concepts ...`: the twins of the Concepts
//! page (SpLiCE). Loading, caching and printing only; the work is the
//! library's `concepts` module.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use cliplens::clip::Clip;
use cliplens::compare::prepare_image;
use cliplens::concepts::collection::{self, ConceptCount, ConceptShift, Intervention};
use cliplens::concepts::dictionary::cache_key;
use cliplens::concepts::{
    BuiltinVocabulary, DEFAULT_L0, DecomposeReport, Decomposition, Dictionary, ImageMean, ImageMeanInfo, ImageReport,
    Sparsity, Vocabulary, VocabularyInfo, decompose, sparsity_json,
};
use cliplens::native::{Backend, device, dir_name, read, read_model};
use cliplens::quantize::sha256_hex;
use cliplens::{Error, Result};
use serde::Serialize;

/// File endings taken from a `--dir`.
const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"];

/// What every decomposition command shares: the model, the words, the centre, the sparsity.
#[derive(Args, Clone)]
pub struct ConceptOptions {
    /// Model directory (config.json, tokenizer.json, weights) or a weights file beside them.
    #[arg(long)]
    model: PathBuf,
    /// A built-in list (laion-clean, laion-10k, laion-bigrams-15k,
    /// laion-clean-with-sensitive, world) or a file with one concept per line.
    /// Default: `world` for the embedded world models, else laion-clean.
    #[arg(long)]
    vocab: Option<String>,
    /// The image mean to centre on: a JSON array of numbers. Default: the
    /// model's image_mean.json, SpLiCE's mean for OpenAI B/32 and B/16, else
    /// the collection's own (20 images or more), else none.
    #[arg(long)]
    image_mean: Option<PathBuf>,
    /// Number of concepts to aim for (λ is searched; the result has at most this many).
    #[arg(long, conflicts_with = "lambda")]
    l0: Option<usize>,
    /// A fixed λ, scaled as SpLiCE's (sklearn Lasso alpha = λ / (2d)).
    #[arg(long)]
    lambda: Option<f64>,
    /// Do not read or write the dictionary cache (~/.cache/cliplens/concepts).
    #[arg(long)]
    no_cache: bool,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

#[derive(Args)]
pub struct DecomposeArgs {
    #[command(flatten)]
    options: ConceptOptions,
    /// An image file; repeat for several.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Every image in a folder (png, jpg, webp, gif, bmp, tiff), by name.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of charts.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum ConceptsCommand {
    /// Two folders decomposed and compared: the concepts that rise and fall from A to B.
    Compare(CompareArgs),
    /// The concepts a folder is made of (histogram), or its images ranked by one concept.
    Collection(CollectionArgs),
    /// Remove concepts from every image of a folder and compare zero-shot predictions before and after.
    Intervene(InterveneArgs),
    /// Write an image mean (JSON array) from a folder, or from generated world scenes.
    ImageMean(ImageMeanArgs),
    /// Print a vocabulary's concepts (a built-in one, or a file as it will be read).
    Words {
        #[arg(long, default_value = "laion-clean")]
        vocab: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    options: ConceptOptions,
    #[arg(long)]
    a: PathBuf,
    #[arg(long)]
    b: PathBuf,
    /// Concepts to print (JSON has all).
    #[arg(long, default_value_t = 15)]
    top: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CollectionArgs {
    #[command(flatten)]
    options: ConceptOptions,
    #[arg(long)]
    dir: PathBuf,
    /// Rank the images by this concept's weight instead.
    #[arg(long)]
    search: Option<String>,
    #[arg(long, default_value_t = 15)]
    top: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InterveneArgs {
    #[command(flatten)]
    options: ConceptOptions,
    #[arg(long)]
    dir: PathBuf,
    /// A concept to remove; repeat for several.
    #[arg(long = "remove", required = true)]
    remove: Vec<String>,
    /// A zero-shot class prompt; give two or more.
    #[arg(long = "prompt", required = true)]
    prompts: Vec<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ImageMeanArgs {
    #[arg(long)]
    model: PathBuf,
    /// Images to average.
    #[arg(long, conflicts_with = "world_scenes")]
    dir: Option<PathBuf>,
    /// Average this many generated world scenes instead (seed --seed).
    #[arg(long)]
    world_scenes: Option<usize>,
    #[arg(long, default_value_t = 31)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

pub fn run_decompose(args: DecomposeArgs) -> Result<ExitCode> {
    let mut paths = args.images.clone();
    if let Some(dir) = &args.dir {
        paths.extend(images_in(dir)?);
    }
    if paths.is_empty() {
        return Err(Error::usage("decompose", "give at least one --image or a --dir with images"));
    }
    let session = Session::open(&args.options)?;
    let (files, embeds, mut errors) = session.embed_files(&paths)?;
    let (report, _, _) = session.decompose(&files, &embeds, "the images given")?;
    errors.extend(report.errors.iter().cloned());
    let report = DecomposeReport { errors: errors.clone(), ..report };
    for line in &report.warnings {
        eprintln!("warning: {line}");
    }
    for line in &errors {
        eprintln!("error: {line}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("report serializes"));
    } else {
        print_decompositions(&report);
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn run(command: ConceptsCommand) -> Result<ExitCode> {
    match command {
        ConceptsCommand::Compare(args) => compare(args),
        ConceptsCommand::Collection(args) => collection_view(args),
        ConceptsCommand::Intervene(args) => intervene(args),
        ConceptsCommand::ImageMean(args) => image_mean(args),
        ConceptsCommand::Words { vocab, json } => {
            let (vocabulary, warnings) = vocabulary_named(&vocab)?;
            for line in &warnings {
                eprintln!("warning: {line}");
            }
            if json {
                let info = vocabulary.info();
                let out = serde_json::json!({"source": info.source, "size": info.size, "sha256": info.sha256, "words": vocabulary.words});
                println!("{out}");
            } else {
                vocabulary.words.iter().for_each(|w| println!("{w}"));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A loaded model with its dictionary, centre and sparsity.
struct Session {
    clip: Clip,
    model_dir: PathBuf,
    dictionary: Dictionary,
    own_mean: Option<ImageMean>,
    user_mean: Option<PathBuf>,
    sparsity: Sparsity,
    warnings: Vec<String>,
    device: burn::tensor::Device,
}

impl Session {
    fn open(options: &ConceptOptions) -> Result<Self> {
        let device = device(options.backend)?;
        let files = read_model(&options.model)?;
        // The cache key names the weights; hashing a full-size model costs seconds, so only when caching.
        let model_sha256 = (!options.no_cache).then(|| sha256_hex(&files.weights.1));
        let clip = Clip::load(&files, &device)?;
        let model_dir = if options.model.is_dir() {
            options.model.clone()
        } else {
            options.model.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let is_world = model_dir.join("world.json").is_file();
        let (vocabulary, warnings) = match options.vocab.as_deref() {
            None if is_world => (BuiltinVocabulary::World.vocabulary(), Vec::new()),
            None => (BuiltinVocabulary::LaionClean.vocabulary(), Vec::new()),
            Some(name) => vocabulary_named(name)?,
        };
        let dictionary = load_dictionary(&clip, &vocabulary, model_sha256.as_deref())?;
        let dim = clip.config().projection_dim;
        let own_path = model_dir.join("image_mean.json");
        let own_mean =
            if own_path.is_file() { Some(ImageMean::from_json(&read(&own_path)?, &own_path.display().to_string(), dim)?) } else { None };
        let sparsity = match (options.l0, options.lambda) {
            (_, Some(l)) => Sparsity::Lambda(l),
            (Some(k), None) => Sparsity::TargetL0(k),
            (None, None) => Sparsity::TargetL0(DEFAULT_L0),
        }
        .check()?;
        Ok(Session {
            clip,
            model_dir,
            dictionary,
            own_mean,
            user_mean: options.image_mean.clone(),
            sparsity,
            warnings,
            device,
        })
    }

    fn model_name(&self) -> String {
        dir_name(&self.model_dir).unwrap_or_else(|| self.clip.name.clone())
    }

    /// Reads and embeds images; a bad one becomes an error line and the rest
    /// go on. Returns (file names, embeddings, error lines).
    #[allow(clippy::type_complexity)]
    fn embed_files(&self, paths: &[PathBuf]) -> Result<(Vec<String>, Vec<Vec<f32>>, Vec<String>)> {
        let mut images = Vec::new();
        let mut names = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            let name = path.display().to_string();
            match read(path).and_then(|bytes| prepare_image(&bytes, &name, &self.clip.preprocess)) {
                Ok(image) => {
                    images.push(image);
                    names.push(name);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let embeds = pollster::block_on(self.clip.embed_images(&images))?;
        Ok((names, embeds, errors))
    }

    fn mean_for(&self, embeds: &[Vec<f32>], what: &str) -> Result<ImageMean> {
        let dim = self.clip.config().projection_dim;
        Ok(match &self.user_mean {
            Some(path) => ImageMean::from_json(&read(path)?, &path.display().to_string(), dim)?,
            None => ImageMean::default_for(self.own_mean.clone(), &self.model_name(), embeds, what),
        })
    }

    fn decompose_with(&self, embeds: &[Vec<f32>], mean: &ImageMean) -> Result<Vec<Decomposition>> {
        let on_device = self.dictionary.on_device(&self.device);
        pollster::block_on(decompose(&self.dictionary, &on_device, mean, embeds, self.sparsity, |_, _| true))
    }

    fn decompose(&self, files: &[String], embeds: &[Vec<f32>], what: &str) -> Result<(DecomposeReport, Vec<Decomposition>, ImageMean)> {
        let mean = self.mean_for(embeds, what)?;
        let mut warnings = self.warnings.clone();
        if mean.values.is_none() {
            warnings.push(format!(
                "no image mean for this model and fewer than {} images: decomposing without centring (poorer); pass --image-mean",
                cliplens::concepts::image_mean::MIN_COLLECTION
            ));
        }
        let decompositions = self.decompose_with(embeds, &mean)?;
        let report = DecomposeReport {
            model: self.model_name(),
            vocabulary: self.dictionary.vocabulary.clone(),
            image_mean: mean.info(),
            sparsity: sparsity_json(self.sparsity),
            images: files.iter().zip(&decompositions).map(|(f, d)| ImageReport::new(f.clone(), d, &self.dictionary)).collect(),
            errors: Vec::new(),
            warnings,
        };
        Ok((report, decompositions, mean))
    }
}

/// A built-in vocabulary by name, else a file with one concept per line.
fn vocabulary_named(name: &str) -> Result<(Vocabulary, Vec<String>)> {
    if let Some(v) = BuiltinVocabulary::from_name(name) {
        return Ok((v.vocabulary(), Vec::new()));
    }
    let path = Path::new(name);
    if !path.is_file() {
        let names: Vec<&str> = BuiltinVocabulary::ALL.iter().map(|v| v.name()).collect();
        return Err(Error::usage(name, format!("is neither a file nor a built-in vocabulary ({})", names.join(", "))));
    }
    let text = String::from_utf8(read(path)?).map_err(|_| Error::usage(name, "is not UTF-8 text (one concept per line)"))?;
    Vocabulary::from_text(name, &text)
}

/// The dictionary from the cache, or encoded (and cached); no cache without
/// the weights' sha256.
fn load_dictionary(clip: &Clip, vocabulary: &Vocabulary, model_sha256: Option<&str>) -> Result<Dictionary> {
    let cache = model_sha256.and_then(|sha| cache_dir().map(|d| d.join(cache_key(sha, &vocabulary.sha256) + ".bin")));
    if let Some(path) = &cache
        && let Ok(bytes) = std::fs::read(path)
        && let Ok(mut d) = Dictionary::from_bytes(&bytes, &path.display().to_string())
    {
        d.vocabulary.source = vocabulary.source.clone();
        return Ok(d);
    }
    let start = Instant::now();
    let total = vocabulary.len();
    let mut last = Instant::now();
    let dictionary = pollster::block_on(Dictionary::encode(clip, vocabulary, |done, _| {
        if total > 2000 && last.elapsed().as_secs_f64() > 2.0 {
            eprintln!("encoding concepts: {done}/{total}");
            last = Instant::now();
        }
        true
    }))?;
    if total > 2000 {
        eprintln!("encoded {total} concepts in {:.1} s", start.elapsed().as_secs_f64());
    }
    if let Some(path) = &cache {
        // A cache that cannot be written only costs time next run.
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(path, dictionary.to_bytes());
    }
    Ok(dictionary)
}

fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cliplens").join("concepts"))
}

/// The images of a folder, by name.
pub fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn folder(session: &Session, dir: &Path) -> Result<(DecomposeReport, Vec<Decomposition>, ImageMean, Vec<String>)> {
    let paths = images_in(dir)?;
    if paths.is_empty() {
        return Err(Error::usage(dir.display().to_string(), "holds no images (png, jpg, webp, gif, bmp, tiff)"));
    }
    let (files, embeds, errors) = session.embed_files(&paths)?;
    let (report, decompositions, mean) = session.decompose(&files, &embeds, &format!("folder {}", dir.display()))?;
    Ok((report, decompositions, mean, errors))
}

fn bar(weight: f64, max: f64) -> String {
    let width = if max > 0.0 { ((weight / max) * 24.0).round() as usize } else { 0 };
    "█".repeat(width.max(1))
}

fn print_decompositions(report: &DecomposeReport) {
    println!(
        "model: {}   vocabulary: {} ({} concepts)   image mean: {}",
        report.model, report.vocabulary.source, report.vocabulary.size, report.image_mean.source
    );
    for image in &report.images {
        println!("\n{}   cosine {:.3}   {} concepts   λ {:.4}", image.file, image.cosine, image.l0, image.lambda);
        let max = image.concepts.first().map_or(0.0, |c| f64::from(c.weight));
        for c in &image.concepts {
            println!("  {:>7.4} {:<24} {}", c.weight, bar(f64::from(c.weight), max), c.concept);
        }
    }
}

#[derive(Serialize)]
struct CompareReport {
    model: String,
    vocabulary: VocabularyInfo,
    image_mean: ImageMeanInfo,
    sparsity: serde_json::Value,
    a: FolderSummary,
    b: FolderSummary,
    /// Every concept either folder uses, the largest change of mean weight first.
    shifts: Vec<ConceptShift>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct FolderSummary {
    folder: String,
    images: usize,
    mean_l0: f64,
    mean_cosine: f64,
}

fn summary(folder: &Path, d: &[Decomposition]) -> FolderSummary {
    let n = d.len().max(1) as f64;
    FolderSummary {
        folder: folder.display().to_string(),
        images: d.len(),
        mean_l0: d.iter().map(|x| x.l0() as f64).sum::<f64>() / n,
        mean_cosine: d.iter().map(|x| f64::from(x.cosine)).sum::<f64>() / n,
    }
}

fn compare(args: CompareArgs) -> Result<ExitCode> {
    let session = Session::open(&args.options)?;
    // One centre for both folders, so a difference is not the centres' doing.
    let (files_a, embeds_a, mut errors) = session.embed_files(&images_in(&args.a)?)?;
    let (files_b, embeds_b, errors_b) = session.embed_files(&images_in(&args.b)?)?;
    errors.extend(errors_b);
    if files_a.is_empty() || files_b.is_empty() {
        return Err(Error::usage("concepts compare", "both folders need at least one readable image"));
    }
    let both: Vec<Vec<f32>> = embeds_a.iter().chain(&embeds_b).cloned().collect();
    let mean = session.mean_for(&both, "both folders")?;
    let da = session.decompose_with(&embeds_a, &mean)?;
    let db = session.decompose_with(&embeds_b, &mean)?;
    let report = CompareReport {
        model: session.model_name(),
        vocabulary: session.dictionary.vocabulary.clone(),
        image_mean: mean.info(),
        sparsity: sparsity_json(session.sparsity),
        a: summary(&args.a, &da),
        b: summary(&args.b, &db),
        shifts: collection::compare(&da, &db, &session.dictionary),
        errors: errors.clone(),
        warnings: session.warnings.clone(),
    };
    for line in &errors {
        eprintln!("error: {line}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("report serializes"));
    } else {
        println!(
            "A: {} ({} images, mean l0 {:.1})   B: {} ({} images, mean l0 {:.1})   image mean: {}",
            report.a.folder, report.a.images, report.a.mean_l0, report.b.folder, report.b.images, report.b.mean_l0, report.image_mean.source
        );
        println!("{:<24} {:>9} {:>9} {:>12}", "concept", "share A", "share B", "weight B-A");
        for s in report.shifts.iter().take(args.top) {
            println!("{:<24} {:>8.1}% {:>8.1}% {:>+12.4}", s.concept, 100.0 * s.share_a, 100.0 * s.share_b, s.weight_change);
        }
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[derive(Serialize)]
struct CollectionReport {
    model: String,
    vocabulary: VocabularyInfo,
    image_mean: ImageMeanInfo,
    sparsity: serde_json::Value,
    images: usize,
    /// Without --search: every concept used, the most common first.
    #[serde(skip_serializing_if = "Option::is_none")]
    histogram: Option<Vec<ConceptCount>>,
    /// With --search: the images carrying the concept, by weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<Vec<SearchHit>>,
    errors: Vec<String>,
}

#[derive(Serialize)]
struct SearchHit {
    file: String,
    weight: f64,
}

fn collection_view(args: CollectionArgs) -> Result<ExitCode> {
    let session = Session::open(&args.options)?;
    let (report, decompositions, _, errors) = folder(&session, &args.dir)?;
    let (histogram, search) = match &args.search {
        None => (Some(collection::histogram(&decompositions, &session.dictionary)), None),
        Some(word) => {
            let j = session
                .dictionary
                .index_of(word)
                .ok_or_else(|| Error::usage(word, format!("is not in the vocabulary {}", session.dictionary.vocabulary.source)))?;
            let hits = collection::search(&decompositions, j)
                .into_iter()
                .map(|(i, weight)| SearchHit { file: report.images[i].file.clone(), weight })
                .collect();
            (None, Some(hits))
        }
    };
    let out = CollectionReport {
        model: report.model,
        vocabulary: report.vocabulary,
        image_mean: report.image_mean,
        sparsity: report.sparsity,
        images: decompositions.len(),
        histogram,
        search,
        errors: errors.clone(),
    };
    for line in &errors {
        eprintln!("error: {line}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&out).expect("report serializes"));
    } else if let Some(h) = &out.histogram {
        println!("{} images   image mean: {}", out.images, out.image_mean.source);
        let max = h.first().map_or(0.0, |c| c.share);
        for c in h.iter().take(args.top) {
            println!("  {:>5.1}% {:<24} {}", 100.0 * c.share, bar(c.share, max), c.concept);
        }
    } else if let Some(hits) = &out.search {
        println!("{} of {} images carry {:?}", hits.len(), out.images, args.search.as_deref().unwrap_or(""));
        for hit in hits.iter().take(args.top) {
            println!("  {:>7.4} {}", hit.weight, hit.file);
        }
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[derive(Serialize)]
struct InterveneReport {
    model: String,
    image_mean: ImageMeanInfo,
    files: Vec<String>,
    #[serde(flatten)]
    intervention: Intervention,
    errors: Vec<String>,
}

fn intervene(args: InterveneArgs) -> Result<ExitCode> {
    if args.prompts.len() < 2 {
        return Err(Error::usage("concepts intervene", "give at least two --prompt classes"));
    }
    let session = Session::open(&args.options)?;
    let mut removed = Vec::new();
    for word in &args.remove {
        removed.push(
            session
                .dictionary
                .index_of(word)
                .ok_or_else(|| Error::usage(word, format!("is not in the vocabulary {}", session.dictionary.vocabulary.source)))?,
        );
    }
    let (report, decompositions, mean, errors) = folder(&session, &args.dir)?;
    let prompt_embeds = pollster::block_on(session.clip.embed_texts(&args.prompts))?.embeds;
    let intervention = collection::intervene(&decompositions, &removed, &session.dictionary, &mean, &args.prompts, &prompt_embeds);
    let out = InterveneReport {
        model: report.model,
        image_mean: report.image_mean,
        files: report.images.iter().map(|i| i.file.clone()).collect(),
        intervention,
        errors: errors.clone(),
    };
    for line in &errors {
        eprintln!("error: {line}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&out).expect("report serializes"));
    } else {
        let i = &out.intervention;
        println!("removed: {}   {} of {} predictions changed", i.removed.join(", "), i.changed, out.files.len());
        println!("{:<32} {:>7} {:>7}", "prompt", "before", "after");
        for (p, prompt) in i.prompts.iter().enumerate() {
            println!("{:<32} {:>7} {:>7}", prompt, i.count_before[p], i.count_after[p]);
        }
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn image_mean(args: ImageMeanArgs) -> Result<ExitCode> {
    let device = device(args.backend)?;
    let clip = Clip::load(&read_model(&args.model)?, &device)?;
    let (embeds, what) = match (&args.dir, args.world_scenes) {
        (Some(dir), None) => {
            let mut images = Vec::new();
            for path in images_in(dir)? {
                let name = path.display().to_string();
                match read(&path).and_then(|b| prepare_image(&b, &name, &clip.preprocess)) {
                    Ok(image) => images.push(image),
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            (pollster::block_on(clip.embed_images(&images))?, format!("folder {}", dir.display()))
        }
        (None, Some(n)) => {
            let scenes = cliplens::world::scenes(args.seed, n);
            (pollster::block_on(cliplens::world::eval::embed_scenes(&clip, &scenes))?, format!("{n} world scenes (seed {})", args.seed))
        }
        _ => return Err(Error::usage("concepts image-mean", "give --dir or --world-scenes")),
    };
    let mean = ImageMean::of_collection(&embeds, &what).ok_or_else(|| Error::usage("concepts image-mean", "no images to average"))?;
    let norm = mean.info().norm;
    let values = mean.values.expect("a collection mean has values");
    std::fs::write(&args.out, serde_json::to_string(&values).expect("numbers serialize") + "\n")
        .map_err(|e| Error::io(args.out.display().to_string(), e))?;
    eprintln!("wrote {}: the mean of {what}, norm {norm:.4}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
