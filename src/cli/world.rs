//! `cliplens world`: the synthetic world the embedded models learn:
//! `generate` writes scenes with their labels, `eval` measures a model on it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use cliplens::clip::Clip;
use cliplens::native::{Backend, device, read_model};
use cliplens::{Error, Result};

#[derive(Subcommand)]
pub enum WorldCommand {
    /// Write world images (PNG) and their ground truth (labels.csv).
    Generate {
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        /// Plant a shift: attribute=value:rate (e.g. background=night:0.8), the
        /// share of scenes forced to that value (each other draw is unchanged).
        #[arg(long, conflicts_with = "roles")]
        skew: Option<String>,
        /// Only scenes with one of these roles (comma-separated, e.g. doctor,nurse): a task with the roles' planted group shares as a shortcut.
        #[arg(long)]
        roles: Option<String>,
        /// With --roles: only scenes whose role is drawn (its hat), so the picture shows the label.
        #[arg(long, requires = "roles")]
        role_shown: bool,
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

pub fn run(command: WorldCommand) -> Result<ExitCode> {
    match command {
        WorldCommand::Generate { seed, count, out, skew, roles, role_shown } => {
            let skew = skew.map(|s| cliplens::world::Skew::parse(&s).map_err(|e| Error::usage("--skew", e))).transpose()?;
            let scenes = match (skew, roles) {
                (Some(skew), _) => cliplens::world::skewed_scenes(seed, count, skew),
                (None, Some(roles)) => {
                    let roles = cliplens::world::parse_roles(&roles).map_err(|e| Error::usage("--roles", e))?;
                    cliplens::world::role_scenes(seed, count, &roles, role_shown)
                }
                (None, None) => cliplens::world::scenes(seed, count),
            };
            generate(&scenes, &out)
        }
        WorldCommand::Eval { model, seed, count, agree_with, json, backend } => eval(&model, seed, count, agree_with.as_deref(), json, backend),
    }
}

fn generate(drawn: &[cliplens::world::Scene], out: &Path) -> Result<ExitCode> {
    use cliplens::world::{ATTRIBUTES, captions::full_caption, render::render};
    let count = drawn.len();
    let out_name = out.display().to_string();
    std::fs::create_dir_all(out).map_err(|e| Error::io(&out_name, e))?;
    // role_shown: whether the picture draws the role (its hat); see HIDDEN_ROLE_RATE.
    let mut csv = String::from("file,caption,group,role,role_shown");
    for attribute in &ATTRIBUTES {
        csv.push(',');
        csv.push_str(attribute.name);
    }
    csv.push('\n');
    let digits = count.saturating_sub(1).to_string().len().max(5);
    for (i, scene) in drawn.iter().enumerate() {
        let file = format!("{i:0digits$}.png");
        let image = render(scene);
        let buffer = image::RgbImage::from_raw(image.width as u32, image.height as u32, image.pixels)
            .expect("a rendered scene has width * height pixels");
        let path = out.join(&file);
        buffer.save(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let mut row = vec![file, full_caption(scene), scene.group_word().to_string(), scene.role_word().unwrap_or("").to_string()];
        row.push(if scene.role.is_none() { String::new() } else { scene.role_shown().to_string() });
        row.extend((0..ATTRIBUTES.len()).map(|a| scene.value(a).to_string()));
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let labels = out.join("labels.csv");
    std::fs::write(&labels, csv).map_err(|e| Error::io(labels.display().to_string(), e))?;
    eprintln!("wrote {count} images and labels.csv to {out_name}");
    Ok(ExitCode::SUCCESS)
}

fn eval(model: &Path, seed: u64, count: usize, agree_with: Option<&Path>, json: bool, backend: Backend) -> Result<ExitCode> {
    use cliplens::world::eval::{decision_agreement, evaluate};
    if count == 0 {
        return Err(Error::usage("--count", "must be at least 1"));
    }
    let device = device(backend)?;
    let files = read_model(model)?;
    let clip = Clip::load(&files, &device)?;
    let mut result = pollster::block_on(evaluate(&clip, seed, count))?;
    // So that published figures name the exact weights they measured.
    result.weights_sha256 = Some(cliplens::quantize::sha256_hex(&files.weights.1));
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
        "Spearman rho with the planted rates: classified {:.3}, counterfactual preference {:.3}",
        result.role_tracking_spearman, result.counterfactual_spearman
    );
    println!("counterfactual effect: cos(glim version) - cos(vorn version) of the same pictures with the role's prompts (\"a photo of a <role>\", \"a photo of <roles>\")");
    println!("  role      planted   mean difference [95% bootstrap CI]    d");
    for b in &result.roles {
        let e = &b.counterfactual_effect;
        println!(
            "  {:<8} {:>6.0}%   {:>+8.4} [{:>+8.4}, {:>+8.4}]   {:>+6.2}",
            b.role,
            100.0 * b.planted_group_a_rate,
            e.mean_difference,
            e.ci95[0],
            e.ci95[1],
            e.standardized_d
        );
    }
    println!(
        "skewed roles' effects vs planted order: Spearman {:.3}; largest control effect / smallest skewed effect: {:.3}",
        result.counterfactual_effect_spearman, result.control_to_skewed_effect_ratio
    );
    if let Some(hash) = &result.weights_sha256 {
        println!("weights sha256 {hash}");
    }
    if let Some((other, share)) = agreement {
        println!("zero-shot decisions alike with {other}: {:.2}%", 100.0 * share);
    }
    Ok(ExitCode::SUCCESS)
}
