//! `cliplens probe fooling`: one image made to match many unrelated prompts
//! (CLIPMasterPrints), compared with real images on each, before and after
//! the modality-gap shift. Parsing, loading and printing only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cliplens::clip::Clip;
use cliplens::compare::prepare_image;
use cliplens::invert::output::encode_png;
use cliplens::invert::Preset;
use cliplens::native::{Backend, device, read, read_model};
use cliplens::probes::fooling::{self, Aim, FoolingReport, WORLD_PROMPTS};
use cliplens::{Error, Result};

#[derive(Args)]
pub struct FoolingArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// A prompt the image should match; repeat (at least two). With --world and none given, eight
    /// unrelated world prompts (one value of each of eight attributes).
    #[arg(long = "prompt")]
    prompts: Vec<String>,
    /// Compare with N generated world scenes (their full captions give the gap).
    #[arg(long, conflicts_with = "images")]
    world: Option<usize>,
    /// Compare with these real images (the gap: their centroid against the prompts').
    #[arg(long, num_args = 1..)]
    images: Vec<PathBuf>,
    /// Seed of the optimization (and of the world scenes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Inversion settings to start from: baseline (plain pixels, no augmentation or priors: the
    /// strongest fooler), quick, balanced or best (more natural pictures that fool less).
    #[arg(long, default_value = "baseline")]
    preset: String,
    #[arg(long)]
    steps: Option<usize>,
    /// min (the direction whose smallest cosine with the prompts is largest: every prompt must
    /// match) or mean (the prompts' mean direction).
    #[arg(long, default_value = "min")]
    aim: String,
    /// Write the fooling image here (PNG).
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    csv: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run_fooling(args: FoolingArgs) -> Result<ExitCode> {
    let device = device(args.backend)?;
    let clip = Clip::load(&read_model(&args.model)?, &device)?;
    let prompts: Vec<String> = if args.prompts.is_empty() && args.world.is_some() {
        WORLD_PROMPTS.iter().map(|p| p.to_string()).collect()
    } else {
        args.prompts.clone()
    };
    let aim = Aim::parse(&args.aim).map_err(|e| Error::usage("--aim", e))?;
    let mut settings = Preset::from_name(&args.preset)?.settings_for(clip.config().vision_config.image_size);
    settings.seed = args.seed;
    if let Some(steps) = args.steps {
        settings.steps = steps;
    }
    settings.preview_every = 0;

    // The real images first: a bad file is named before minutes of optimization.
    let mut problems = Vec::new();
    let (source, real, gap, gap_source) = match args.world {
        Some(0) => return Err(Error::usage("--world", "needs at least one real scene to compare with")),
        Some(count) => {
            let (real, gap) = pollster::block_on(fooling::world_reference(&clip, args.seed, count))?;
            (format!("{count} world scenes (seed {})", args.seed), real, gap, format!("{count} world scenes and their captions"))
        }
        None => {
            let mut images = Vec::new();
            for path in &args.images {
                match read(path).and_then(|b| prepare_image(&b, &path.display().to_string(), &clip.preprocess)) {
                    Ok(i) => images.push(i),
                    Err(e) => problems.push(e.to_string()),
                }
            }
            if images.is_empty() {
                return Err(Error::usage("probe fooling", "no real image to compare with: give --world N or --images FILE..."));
            }
            let mut real = Vec::new();
            for chunk in images.chunks(64) {
                real.extend(pollster::block_on(clip.embed_images(chunk))?);
            }
            let texts = pollster::block_on(clip.embed_texts(&prompts))?.embeds;
            let gap = fooling::gap_vector(&real, &texts);
            let n = real.len();
            (format!("{n} of your images"), real, gap, format!("{n} images against the prompts"))
        }
    };
    for p in &problems {
        eprintln!("skipped: {p}");
    }
    let steps = settings.steps;
    let fooling::Fooled { inversion, texts, .. } = pollster::block_on(fooling::fooling_image(&clip, &prompts, aim, settings.clone(), async |report| {
        if !args.json && (report.step % 10 == 0 || report.step == steps) {
            eprint!("\r  step {}/{}: similarity to the aim {:.4}", report.step, report.steps, report.similarity);
        }
        true
    }))?;
    if !args.json {
        eprintln!();
    }
    let png = encode_png(&inversion.image, &[("Software", "CLIP Lens probe fooling".into())])?;
    std::fs::write(&args.out, png).map_err(|e| Error::io(args.out.display().to_string(), e))?;
    let fooling_embed = pollster::block_on(clip.embed_images(std::slice::from_ref(&inversion.image)))?.remove(0);
    let report = fooling::compare(&prompts, &texts, &fooling_embed, &real, &gap, &gap_source).map_err(|e| Error::usage("probe fooling", e))?;
    if let Some(path) = &args.csv {
        std::fs::write(path, fooling::csv(&report)).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    if args.json {
        let record = serde_json::json!({
            "probe": "fooling image", "model": clip.name, "source": source, "aim": aim,
            "settings": settings, "image": args.out.display().to_string(), "problems": problems, "report": report,
        });
        println!("{}", serde_json::to_string_pretty(&record).map_err(|e| Error::usage("json", e.to_string()))?);
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&clip.name, &source, &report);
    println!("  image: {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn print_report(model: &str, source: &str, r: &FoolingReport) {
    println!("Fooling image of {model} against {source}");
    println!("  {:<36} {:>8} {:>10} {:>8}   after the gap shift: {:>8} {:>10} {:>8}", "prompt", "fooling", "best real", "margin", "fooling", "best real", "margin");
    for p in &r.prompts {
        println!(
            "  {:<36} {:>8.4} {:>10.4} {:>+8.4}   {:>29.4} {:>10.4} {:>+8.4}",
            p.prompt, p.fooling, p.best_real, p.margin, p.shifted_fooling, p.shifted_best_real, p.shifted_margin
        );
    }
    println!(
        "  beats the best real image on {} of {} prompts (smallest margin {:+.4}); after the shift on {} (mean margin {:+.4} → {:+.4}{})",
        r.prompts_won,
        r.prompts.len(),
        r.min_margin,
        r.shifted_prompts_won,
        r.mean_margin,
        r.shifted_mean_margin,
        r.advantage_remaining.map_or(": it had no advantage to keep".into(), |a| format!(": {:.0}% of the advantage remains", 100.0 * a))
    );
}
