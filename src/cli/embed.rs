//! `cliplens embed`: images and prompts into embeddings and their cosine
//! matrix (the Embed & compare page's twin).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cliplens::clip::{Clip, EmbedReport, cosine_matrix};
use cliplens::compare::{prepare_image, prompt_problem, truncation_warning};
use cliplens::native::{Backend, device, read, read_model};
use cliplens::preprocess::RgbImage;
use cliplens::tokenizer::quote;
use cliplens::{Error, Result};

#[derive(Args)]
pub struct EmbedArgs {
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
}

pub fn run(args: EmbedArgs) -> Result<ExitCode> {
    let EmbedArgs { model, images: image_paths, texts, json, backend } = args;
    if image_paths.is_empty() && texts.is_empty() {
        return Err(Error::usage("embed", "give at least one --image or --text"));
    }
    let device = device(backend)?;
    let clip = Clip::load(&read_model(&model)?, &device)?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    // Each bad input is reported and skipped; the rest of the batch goes on.
    let mut images: Vec<RgbImage> = Vec::new();
    let mut image_names = Vec::new();
    for path in &image_paths {
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
    for text in &texts {
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
