//! `cliplens probe association` and `cliplens probe social`: the two probes
//! that compare pictures in pairs (two objects against one; an attribute
//! changed against the original). Parsing, loading and printing only; the
//! figures are the library's (`probes::association`, `probes::social`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use cliplens::clip::Clip;
use cliplens::compare::prepare_image;
use cliplens::native::{Backend, device, read, read_model};
use cliplens::preprocess::RgbImage;
use cliplens::probes::association::{self, AssociationReport, Question, QuestionEmbeddings};
use cliplens::probes::view::{self, pct};
use cliplens::probes::social::{self, ADJECTIVE_TEMPLATE, CounterfactualPair, SocialReport};
use cliplens::{Error, Result};

#[derive(Args)]
pub struct AssociationArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Generate N two-figure world scenes (two shapes, two colours; a test set the models never
    /// trained on) and their one-figure controls; ask each the first figure's colour.
    #[arg(long, conflicts_with = "questions")]
    world: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Your questions: a CSV with columns id, file, kind (two or single), object, attribute (the
    /// object's own) and other (the other object's); rows sharing an id are paired.
    #[arg(long, required_unless_present = "world")]
    questions: Option<PathBuf>,
    /// How a question becomes a prompt.
    #[arg(long, default_value = association::TEMPLATE)]
    template: String,
    #[arg(long)]
    csv: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SocialArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Render N world scenes twice, glim and vorn (nothing else changes), and score both against
    /// each role's prompts.
    #[arg(long, conflicts_with = "pairs")]
    world: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Your counterfactual pairs: a CSV with columns pair, attribute, value and file (two rows per
    /// pair: the original first); any other column is a context held fixed, for intersections.
    #[arg(long, required_unless_present = "world")]
    pairs: Option<PathBuf>,
    /// A word set of your own: `name=word,word,...` (each word goes through --template); repeat.
    /// Without --world the Stereotype Content Model's warmth and competence sets come first.
    #[arg(long = "words")]
    words: Vec<String>,
    /// How a word becomes a prompt.
    #[arg(long, default_value = ADJECTIVE_TEMPLATE)]
    template: String,
    #[arg(long)]
    csv: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn print_json(value: serde_json::Value) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&value).map_err(|e| Error::usage("json", e.to_string()))?);
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: String) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), e))
}

fn embed_all(clip: &Clip, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(64) {
        out.extend(pollster::block_on(clip.embed_images(chunk))?);
    }
    Ok(out)
}

fn embed_texts(clip: &Clip, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    Ok(pollster::block_on(clip.embed_texts(texts))?.embeds)
}

/// A user's CSV: its header (trimmed, lower-case) and rows with their line numbers.
struct Table {
    origin: String,
    headers: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
    problems: Vec<String>,
}

impl Table {
    fn read(path: &Path, required: &[&str]) -> Result<Table> {
        let origin = path.display().to_string();
        let bytes = read(path)?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| Error::usage(origin.clone(), format!("not a CSV: {e}")))?
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        let missing: Vec<&str> = required.iter().copied().filter(|r| !headers.iter().any(|h| h == r)).collect();
        if !missing.is_empty() {
            return Err(Error::usage(origin, format!("needs a header row with the columns {}", missing.join(", "))));
        }
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        for record in reader.records() {
            match record {
                Ok(r) => rows.push((r.position().map_or(0, |p| p.line()), r.iter().map(|v| v.trim().to_string()).collect())),
                Err(e) => problems.push(format!("{origin} line {}: {e}", e.position().map_or(0, |p| p.line()))),
            }
        }
        Ok(Table { origin, headers, rows, problems })
    }

    fn column(&self, name: &str) -> usize {
        self.headers.iter().position(|h| h == name).expect("checked in read")
    }

    fn image(&self, clip: &Clip, file: &str) -> Result<RgbImage> {
        let base = Path::new(&self.origin).parent().unwrap_or(Path::new("."));
        let path = base.join(file);
        read(&path).and_then(|b| prepare_image(&b, &path.display().to_string(), &clip.preprocess))
    }
}

pub fn run_association(args: AssociationArgs) -> Result<ExitCode> {
    let device = device(args.backend)?;
    let clip = Clip::load(&read_model(&args.model)?, &device)?;
    if !(args.template.contains("{attribute}") && args.template.contains("{object}")) {
        return Err(Error::usage("--template", "must contain {attribute} and {object}"));
    }
    let prompt = |attribute: &str, object: &str| association::prompt(&args.template, attribute, object);
    let (source, items, problems) = match (args.world, &args.questions) {
        (Some(count), _) => {
            let items = pollster::block_on(association::world_questions(&clip, args.seed, count, &args.template))?;
            (format!("{count} two-figure world scenes (seed {}) and their one-figure controls", args.seed), items, Vec::new())
        }
        (None, Some(path)) => {
            let table = Table::read(path, &["id", "file", "kind", "object", "attribute", "other"])?;
            let [id, file, kind, object, attribute, other] =
                ["id", "file", "kind", "object", "attribute", "other"].map(|c| table.column(c));
            let mut problems = table.problems.clone();
            let mut order: Vec<String> = Vec::new();
            let mut found: BTreeMap<String, (Question, Option<RgbImage>, Option<RgbImage>)> = BTreeMap::new();
            for (line, row) in &table.rows {
                let cell = |c: usize| row.get(c).map(String::as_str).unwrap_or("");
                let at = format!("{} line {line}", table.origin);
                if [id, file, object, attribute, other].iter().any(|&c| cell(c).is_empty()) {
                    problems.push(format!("{at}: a required cell is empty"));
                    continue;
                }
                let is_two = match cell(kind).to_ascii_lowercase().as_str() {
                    "two" => true,
                    "single" | "one" => false,
                    k => {
                        problems.push(format!("{at}: kind {k:?} is neither two nor single"));
                        continue;
                    }
                };
                let image = match table.image(&clip, cell(file)) {
                    Ok(i) => i,
                    Err(e) => {
                        problems.push(format!("{at}: {e}"));
                        continue;
                    }
                };
                let key = cell(id).to_string();
                let entry = found.entry(key.clone()).or_insert_with(|| {
                    order.push(key.clone());
                    let q = Question {
                        id: key.clone(),
                        object: cell(object).to_string(),
                        attribute: cell(attribute).to_string(),
                        other: cell(other).to_string(),
                        true_prompt: prompt(cell(attribute), cell(object)),
                        other_prompt: prompt(cell(other), cell(object)),
                    };
                    (q, None, None)
                });
                let q = &entry.0;
                if (q.object.as_str(), q.attribute.as_str(), q.other.as_str()) != (cell(object), cell(attribute), cell(other)) {
                    problems.push(format!("{at}: question {key:?} names another object or attribute than its first row"));
                    continue;
                }
                let slot = if is_two { &mut entry.1 } else { &mut entry.2 };
                if slot.is_some() {
                    problems.push(format!("{at}: question {key:?} already has a {} picture", if is_two { "two-object" } else { "single-object" }));
                    continue;
                }
                *slot = Some(image);
            }
            let mut questions = Vec::new();
            let (mut two, mut single) = (Vec::new(), Vec::new());
            for key in order {
                let (q, t, s) = found.remove(&key).expect("kept in order");
                questions.push(q);
                two.push(t.map(|i| embed_all(&clip, &[i])).transpose()?.map(|mut v| v.remove(0)));
                single.push(s.map(|i| embed_all(&clip, &[i])).transpose()?.map(|mut v| v.remove(0)));
            }
            let items = question_embeddings(&clip, questions, two, single)?;
            (format!("{} questions from {}", items.len(), path.display()), items, problems)
        }
        (None, None) => return Err(Error::usage("probe association", "give --world N or --questions CSV")),
    };
    for p in &problems {
        eprintln!("skipped: {p}");
    }
    let report = association::analyse(&items, args.seed).map_err(|e| Error::usage("probe association", e))?;
    if let Some(path) = &args.csv {
        write(path, association::csv(&report))?;
    }
    if args.json {
        return print_json(serde_json::json!({
            "probe": "concept association", "model": clip.name, "source": source, "template": args.template,
            "problems": problems, "report": report,
        }));
    }
    print_association(&clip.name, &source, &report);
    Ok(ExitCode::SUCCESS)
}

fn question_embeddings(
    clip: &Clip,
    questions: Vec<Question>,
    two: Vec<Option<Vec<f32>>>,
    single: Vec<Option<Vec<f32>>>,
) -> Result<Vec<QuestionEmbeddings>> {
    let texts: Vec<String> = questions.iter().flat_map(|q| [q.true_prompt.clone(), q.other_prompt.clone()]).collect();
    let embedded = embed_texts(clip, &texts)?;
    Ok(questions
        .into_iter()
        .zip(two)
        .zip(single)
        .enumerate()
        .map(|(i, ((question, two), single))| QuestionEmbeddings {
            question,
            two,
            single,
            true_text: embedded[2 * i].clone(),
            other_text: embedded[2 * i + 1].clone(),
        })
        .collect())
}

fn print_association(model: &str, source: &str, r: &AssociationReport) {
    println!("Concept association of {model} on {source}");
    println!("  the other object's attribute wins (95% interval):");
    println!("    with both objects   {} of {} questions: {}", r.two_object.other_wins, r.two_object.questions, pct(&r.two_object.rate));
    println!(
        "    with the object alone {} of {} questions: {}",
        r.single_object.other_wins,
        r.single_object.questions,
        pct(&r.single_object.rate)
    );
    println!("  {}", view::association_effect(r));
}

pub fn run_social(args: SocialArgs) -> Result<ExitCode> {
    let device = device(args.backend)?;
    let clip = Clip::load(&read_model(&args.model)?, &device)?;
    if !args.template.contains("{}") {
        return Err(Error::usage("--template", "must contain {} where the word goes"));
    }
    let mut sets = if args.world.is_some() { social::world_word_sets() } else { social::scm_word_sets(&args.template) };
    for spec in &args.words {
        let (name, words) = spec.split_once('=').ok_or_else(|| Error::usage("--words", format!("{spec:?} is not name=word,word")))?;
        let words: Vec<String> = words.split(',').map(str::trim).filter(|w| !w.is_empty()).map(|w| args.template.replace("{}", w)).collect();
        if name.trim().is_empty() || words.is_empty() {
            return Err(Error::usage("--words", format!("{spec:?} needs a name and at least one word")));
        }
        sets.push((name.trim().to_string(), words));
    }
    let word_sets = pollster::block_on(social::embed_word_sets(&clip, &sets))?;
    let (source, pairs, problems) = match (args.world, &args.pairs) {
        (Some(count), _) => {
            let pairs = pollster::block_on(social::world_pairs(&clip, args.seed, count))?;
            (format!("{count} world scenes (seed {}), each rendered glim and vorn", args.seed), pairs, Vec::new())
        }
        (None, Some(path)) => read_pairs(&clip, path)?,
        (None, None) => return Err(Error::usage("probe social", "give --world N or --pairs CSV")),
    };
    for p in &problems {
        eprintln!("skipped: {p}");
    }
    let report = social::analyse(&pairs, &word_sets, args.seed).map_err(|e| Error::usage("probe social", e))?;
    if let Some(path) = &args.csv {
        write(path, social::csv(&report))?;
    }
    if args.json {
        return print_json(serde_json::json!({
            "probe": "social perception", "model": clip.name, "source": source, "problems": problems, "report": report,
        }));
    }
    print_social(&clip.name, &source, &report);
    Ok(ExitCode::SUCCESS)
}

/// Pairs from a `pair,attribute,value,file[,context...]` CSV: two rows per pair
/// with the same attribute, the original first. A pair that is not exactly
/// that, or whose image cannot be read, is named and left out.
fn read_pairs(clip: &Clip, path: &Path) -> Result<(String, Vec<CounterfactualPair>, Vec<String>)> {
    let table = Table::read(path, &["pair", "attribute", "value", "file"])?;
    let [pair, attribute, value, file] = ["pair", "attribute", "value", "file"].map(|c| table.column(c));
    let context_columns: Vec<usize> = (0..table.headers.len()).filter(|c| ![pair, attribute, value, file].contains(c)).collect();
    let mut problems = table.problems.clone();
    let mut order: Vec<String> = Vec::new();
    let mut rows_of: BTreeMap<String, Vec<&(u64, Vec<String>)>> = BTreeMap::new();
    for row in &table.rows {
        let id = row.1.get(pair).cloned().unwrap_or_default();
        if id.is_empty() {
            problems.push(format!("{} line {}: no pair id", table.origin, row.0));
            continue;
        }
        if !rows_of.contains_key(&id) {
            order.push(id.clone());
        }
        rows_of.entry(id).or_default().push(row);
    }
    let mut pairs = Vec::new();
    for id in order {
        let rows = &rows_of[&id];
        let cell = |r: &(u64, Vec<String>), c: usize| r.1.get(c).cloned().unwrap_or_default();
        let at = format!("{} line {}", table.origin, rows[0].0);
        if rows.len() != 2 {
            problems.push(format!("{at}: pair {id:?} has {} rows, not 2", rows.len()));
            continue;
        }
        if cell(rows[0], attribute) != cell(rows[1], attribute) || cell(rows[0], attribute).is_empty() {
            problems.push(format!("{at}: pair {id:?} must name one attribute in both rows"));
            continue;
        }
        if cell(rows[0], value) == cell(rows[1], value) {
            problems.push(format!("{at}: pair {id:?} has the same value twice"));
            continue;
        }
        let images: Vec<Result<RgbImage>> = rows.iter().map(|r| table.image(clip, &cell(r, file))).collect();
        if let Some(Err(e)) = images.iter().find(|i| i.is_err()) {
            problems.push(format!("{at}: pair {id:?}: {e}"));
            continue;
        }
        let images: Vec<RgbImage> = images.into_iter().map(|i| i.expect("checked")).collect();
        let embeds = embed_all(clip, &images)?;
        let context = context_columns
            .iter()
            .filter(|&&c| cell(rows[0], c) == cell(rows[1], c) && !cell(rows[0], c).is_empty())
            .map(|&c| (table.headers[c].clone(), cell(rows[0], c)))
            .collect();
        pairs.push(CounterfactualPair {
            id: id.clone(),
            attribute: cell(rows[0], attribute),
            from: cell(rows[0], value),
            to: cell(rows[1], value),
            from_embedding: embeds[0].clone(),
            to_embedding: embeds[1].clone(),
            context,
        });
    }
    Ok((format!("{} pairs from {}", pairs.len(), path.display()), pairs, problems))
}

fn print_social(model: &str, source: &str, r: &SocialReport) {
    println!("Social perception of {model} on {source}");
    println!("  mean shift of each word set's cosine when the attribute changes (95% interval, sign-flip p):");
    for s in &r.shifts {
        println!(
            "    {} {} → {}, {:>12}: {:+.4} [{:+.4}, {:+.4}]  p = {:.4}  ({} pairs)",
            s.attribute, s.from, s.to, s.word_set, s.shift.value, s.shift.ci95[0], s.shift.ci95[1], s.test.p_value, s.pairs
        );
    }
}
