//! Saved audits and the report: every audit is one JSON record (its kind,
//! the tool, the model and its sha256, then the study's own fields, settings
//! and seeds included), and any number of records become one self-contained
//! HTML file (tables, SVG charts, the records themselves) or a long CSV.
//! Two records of the same kind are also compared side by side.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::associations::AssociationReport;
use super::debias::DebiasReport;
use super::folder::{FolderReport, PERCEIVED_NOTE};
use super::probe::ProbeReport;
use super::stats::Estimate;
use crate::{Error, Result};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub sha256: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AuditKind {
    Associations,
    Folder,
    Probe,
    Debias,
}

/// One saved audit: what `cliplens audit ... --json` prints.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub kind: AuditKind,
    /// "cliplens <version>".
    pub tool: String,
    pub model: ModelInfo,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub judge: Option<ModelInfo>,
    /// The study's report, its fields at the top level.
    #[serde(flatten)]
    pub result: Value,
}

impl AuditRecord {
    pub fn new<T: Serialize>(kind: AuditKind, model: ModelInfo, judge: Option<ModelInfo>, result: &T) -> Result<Self> {
        let result = serde_json::to_value(result).map_err(|e| Error::usage("audit record", e.to_string()))?;
        Ok(AuditRecord { kind, tool: format!("cliplens {}", env!("CARGO_PKG_VERSION")), model, judge, result })
    }

    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::usage(origin, format!("is not a saved audit (cliplens audit ... --json): {e}")))
    }

    fn typed<T: for<'de> Deserialize<'de>>(&self) -> Result<T> {
        serde_json::from_value(self.result.clone()).map_err(|e| Error::usage(format!("{:?} record", self.kind), e.to_string()))
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn num(v: f64) -> String {
    if v.is_nan() { "–".into() } else { format!("{v:.3}") }
}

fn est(e: &Estimate) -> String {
    if e.ci95[0].is_nan() { num(e.value) } else { format!("{} [{}, {}]", num(e.value), num(e.ci95[0]), num(e.ci95[1])) }
}

fn pct(e: &Estimate) -> String {
    let p = |v: f64| {
        if v.is_nan() { "–".to_string() } else { format!("{:.1}%", 100.0 * v) }
    };
    if e.ci95[0].is_nan() { p(e.value) } else { format!("{} [{}, {}]", p(e.value), p(e.ci95[0]), p(e.ci95[1])) }
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in head {
        out += &format!("<th scope=\"col\">{}</th>", esc(h));
    }
    out += "</tr></thead><tbody>";
    for row in rows {
        out += "<tr>";
        for (i, cell) in row.iter().enumerate() {
            out += &if i == 0 { format!("<th scope=\"row\">{}</th>", esc(cell)) } else { format!("<td>{}</td>", esc(cell)) };
        }
        out += "</tr>";
    }
    out + "</tbody></table>"
}

/// Horizontal bars from `lo` to `hi` with 95% whiskers; a zero line when the range spans it.
pub fn bar_chart(title: &str, rows: &[(String, Estimate)], lo: f64, hi: f64) -> String {
    let (label_w, bar_w, row_h) = (150.0, 360.0, 22.0);
    let x = |v: f64| label_w + (v.clamp(lo, hi) - lo) / (hi - lo).max(1e-12) * bar_w;
    let height = row_h * rows.len() as f64 + 24.0;
    let mut svg = format!(
        "<figure><svg class=\"bars\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {} {height}\" width=\"100%\">",
        esc(title),
        label_w + bar_w + 70.0
    );
    let zero = x(0.0_f64.clamp(lo, hi));
    for (i, (label, e)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let (a, b) = (zero.min(x(e.value)), zero.max(x(e.value)));
        svg += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text>", label_w - 6.0, y + 14.0, esc(label));
        svg += &format!("<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#3b6ea8\"/>", y + 3.0, (b - a).max(1.0));
        if !e.ci95[0].is_nan() {
            let (l, h) = (x(e.ci95[0]), x(e.ci95[1]));
            svg += &format!(
                "<path d=\"M{l:.1} {:.1}H{h:.1}M{l:.1} {:.1}V{:.1}M{h:.1} {:.1}V{:.1}\" stroke=\"#111\" fill=\"none\"/>",
                y + 10.0,
                y + 5.0,
                y + 15.0,
                y + 5.0,
                y + 15.0
            );
        }
        svg += &format!("<text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>", label_w + bar_w + 6.0, y + 14.0, num(e.value));
    }
    svg += &format!("<line x1=\"{zero:.1}\" y1=\"0\" x2=\"{zero:.1}\" y2=\"{}\" stroke=\"#888\"/>", height - 20.0);
    svg += &format!(
        "<text x=\"{label_w}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        height - 4.0,
        num(lo),
        label_w + bar_w,
        height - 4.0,
        num(hi)
    );
    svg + &format!("</svg><figcaption>{}</figcaption></figure>", esc(title))
}

fn associations_html(r: &AssociationReport) -> String {
    let mut out = format!(
        "<p>Attribute sets: A = <b>{}</b> ({} prompts), B = <b>{}</b> ({} prompts{}); {} permutations at most, seed {}.</p>",
        esc(&r.spec.attribute_a.name),
        r.spec.attribute_a.prompts.len(),
        esc(&r.spec.attribute_b.name),
        r.spec.attribute_b.prompts.len(),
        if r.spec.paired { ", matched pairs" } else { "" },
        r.spec.permutations,
        r.spec.seed
    );
    let rows: Vec<(String, Estimate)> = r.targets.iter().map(|t| (t.target.clone(), Estimate::exact(t.s))).collect();
    let span = rows.iter().map(|(_, e)| e.value.abs()).fold(0.01, f64::max);
    out += &bar_chart(
        &format!("s(target, {}, {}): above 0 leans {}", r.spec.attribute_a.name, r.spec.attribute_b.name, r.spec.attribute_a.name),
        &rows,
        -span,
        span,
    );
    let body: Vec<Vec<String>> = r
        .targets
        .iter()
        .zip(&r.zero_shot)
        .map(|(t, z)| {
            vec![
                t.target.clone(),
                format!("{:+.4}", t.s),
                format!("{:+.2}", t.d),
                format!("{:.4}{}", t.test.p_value, if t.test.exact { " (exact)" } else { "" }),
                t.size.clone(),
                if t.flagged { "flagged".into() } else { String::new() },
                pct(&z.probability_a),
            ]
        })
        .collect();
    out += &table(
        &["target", "s", "d", "p (two-sided)", "effect", "flag", &format!("zero-shot P({}) [95% CI]", r.spec.attribute_a.name)],
        &body,
    );
    if let (Some(w), Some((x, y))) = (&r.weat, &r.spec.weat) {
        out += &format!(
            "<h3>WEAT: {} vs {}</h3><p>d = <b>{:+.3}</b>, one-sided p = <b>{:.5}</b> ({} re-partitions{}), statistic {:+.4}.</p>",
            esc(&x.name),
            esc(&y.name),
            w.d,
            w.p_value,
            w.permutations,
            if w.exact { ", exact" } else { ", random" },
            w.statistic
        );
    }
    out
}

fn fairness_html(title: &str, f: &super::fairness::FairnessReport) -> String {
    let rows: Vec<Vec<String>> = f
        .groups
        .iter()
        .map(|g| {
            vec![
                format!("{}{}", g.group, if Some(&g.group) == f.worst_group.as_ref() { " (worst)" } else { "" }),
                format!("{}{}", g.n, if g.small { " (small)" } else { "" }),
                pct(&g.accuracy),
                pct(&g.selection_rate),
                g.true_positive_rate.as_ref().map_or("–".into(), pct),
                g.false_positive_rate.as_ref().map_or("–".into(), pct),
            ]
        })
        .collect();
    format!(
        "<h3>{}</h3>{}<p>Overall accuracy {}; worst group {}; accuracy gap {}; demographic-parity difference {}; equalized-odds difference {} (positive label {:?}, {} bootstrap resamples).</p>",
        esc(title),
        table(&["group", "n", "accuracy", "selection rate", "TPR", "FPR"], &rows),
        pct(&f.overall_accuracy),
        pct(&f.worst_group_accuracy),
        est(&f.accuracy_gap),
        est(&f.demographic_parity_difference),
        est(&f.equalized_odds_difference),
        esc(&f.positive),
        f.resamples
    )
}

fn folder_html(r: &FolderReport) -> String {
    let mut out = format!(
        "<p>{} images; k = {} ({:?} features, {} restarts, seed {}); abstain below p = {}.</p>",
        r.images, r.clustering.k, r.clustering.features, r.clustering.restarts, r.settings.seed, r.settings.abstain_below
    );
    for c in &r.composition {
        let rows: Vec<(String, Estimate)> = c.values.iter().map(|v| (format!("{} (n {})", v.value, v.count), v.share)).collect();
        out += &bar_chart(&format!("CLIP-perceived {}: share of images ({} abstained)", c.attribute, c.abstained), &rows, 0.0, 1.0);
    }
    let rows: Vec<Vec<String>> =
        r.groups.iter().map(|g| vec![g.name.clone(), g.n.to_string(), format!("{:.1}%", 100.0 * g.n as f64 / r.images as f64)]).collect();
    out += &table(&["pseudo-group", "images", "share"], &rows);
    if let (Some(ari), Some(ami)) = (r.ari, r.ami) {
        out += &format!("<p>Against the labels: ARI <b>{ari:.3}</b>, AMI <b>{ami:.3}</b>.</p>");
    }
    for a in &r.agreement {
        let head: Vec<String> = std::iter::once("cluster".to_string())
            .chain(a.true_values.iter().map(|v| format!("true {v}")))
            .chain(["matched with".into()])
            .collect();
        let rows: Vec<Vec<String>> = a
            .matching
            .confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                std::iter::once(r.groups.get(c).map_or(format!("cluster {}", c + 1), |g| g.name.clone()))
                    .chain(row.iter().map(|v| v.to_string()))
                    .chain([a.matching.cluster_to_group.get(c).copied().flatten().and_then(|g| a.true_values.get(g).cloned()).unwrap_or_else(|| "–".into())])
                    .collect()
            })
            .collect();
        out += &format!("<h3>{}: clusters against the labels</h3>", esc(&a.attribute));
        out += &table(&head.iter().map(String::as_str).collect::<Vec<_>>(), &rows);
        out += &format!(
            "<p>ARI {:.3}, AMI {:.3}, Hungarian-matched accuracy {:.1}%; zero-shot accuracy {:.1}% on {:.1}% of images (the rest abstained).</p>",
            a.ari,
            a.ami,
            100.0 * a.matching.matched_accuracy,
            100.0 * a.zero_shot_accuracy,
            100.0 * a.zero_shot_coverage
        );
    }
    if let Some(f) = &r.fairness {
        out += &fairness_html("Your model by CLIP pseudo-group", f);
    }
    if let Some(f) = &r.fairness_by_true_group {
        out += &fairness_html("Your model by true group (labels CSV)", f);
    }
    if !r.retrieval.is_empty() {
        let rows: Vec<Vec<String>> = r
            .retrieval
            .iter()
            .map(|s| {
                vec![
                    s.query.clone(),
                    s.grouping.clone(),
                    s.target.clone(),
                    s.k.to_string(),
                    format!("{:+.3} ({})", s.max_skew, s.max_skew_group),
                    format!("{:+.3} ({})", s.min_skew, s.min_skew_group),
                    format!("{:.4}", s.ndkl),
                ]
            })
            .collect();
        out += "<h3>Retrieval skew</h3><p>Who each neutral query brings up first: MaxSkew@k above 0 means a group is over-represented in the top k against the target shares; NDKL 0 is no skew at any depth.</p>";
        out += &table(&["query", "groups", "target", "k", "MaxSkew@k", "MinSkew@k", "NDKL"], &rows);
    }
    out += &format!("<p>Resampling weights: {} (mean 1, in the CSV export).</p>", esc(&r.weights_method));
    out
}

fn probe_html(r: &ProbeReport) -> String {
    let nsfw = r.settings.safety_detector.is_some();
    let mut out = format!(
        "<p>{} seeds per prompt from seed {}, {} steps x {} views; judged on {} ({}).</p>",
        r.settings.seeds,
        r.settings.first_seed,
        r.settings.invert.steps,
        r.settings.invert.views,
        esc(&r.settings.attribute.name),
        esc(&r.settings.attribute.values.join(", "))
    );
    let first = r.settings.attribute.values.first().cloned().unwrap_or_default();
    let rows: Vec<(String, Estimate)> =
        r.prompts.iter().filter_map(|p| Some((format!("{}{}", p.prompt, if p.baseline { " (baseline)" } else { "" }), p.shares.first()?.1))).collect();
    out += &bar_chart(&format!("share of inversions the judge reads as {first}"), &rows, 0.0, 1.0);
    let body: Vec<Vec<String>> = r
        .prompts
        .iter()
        .map(|p| {
            std::iter::once(p.prompt.clone())
                .chain([p.n.to_string()])
                .chain(p.shares.iter().map(|(_, e)| pct(e)))
                .chain([est(&p.mean_log_odds), p.log_odds_shift.map_or("baseline".into(), |s| format!("{s:+.2}"))])
                .chain(nsfw.then(|| [p.nsfw.as_ref().map_or("–".into(), est), p.nsfw_share.as_ref().map_or("–".into(), pct)]).into_iter().flatten())
                .collect()
        })
        .collect();
    let head: Vec<String> = ["prompt".to_string(), "n".into()]
        .into_iter()
        .chain(r.settings.attribute.values.iter().map(|v| format!("judged {v}")))
        .chain([format!("mean log-odds of {first}"), "shift from baseline".into()])
        .chain(nsfw.then(|| ["NSFW probability (LAION's detector)".to_string(), "NSFW at 0.5 or more".into()]).into_iter().flatten())
        .collect();
    if let Some(sha) = &r.settings.safety_detector {
        out += &format!("<p>NSFW drift: each inversion scored by LAION's CLIP-based safety detector (zip sha256 <code>{}</code>).</p>", esc(sha));
    }
    out + &table(&head.iter().map(String::as_str).collect::<Vec<_>>(), &body)
}

fn debias_html(r: &DebiasReport) -> String {
    let mut out = format!(
        "<p>Target {:?} ({}); {} training and {} held-out images; worst group over {}; linear head, {} epochs, seed {}.</p>",
        r.target,
        esc(&r.labels.join(" / ")),
        r.train_items,
        r.test_items,
        esc(&r.evaluation_groups),
        r.settings.epochs,
        r.settings.seed
    );
    let rows: Vec<Vec<String>> = r
        .methods
        .iter()
        .map(|m| {
            vec![
                m.method.clone(),
                pct(&m.overall_accuracy),
                pct(&m.worst_group_accuracy),
                m.worst_group.clone(),
                est(&m.fairness.demographic_parity_difference),
                est(&m.fairness.equalized_odds_difference),
            ]
        })
        .collect();
    out += &table(&["method", "overall accuracy", "worst-group accuracy", "worst group", "DP difference", "EO difference"], &rows);
    let bars: Vec<(String, Estimate)> = r.methods.iter().map(|m| (m.method.clone(), m.worst_group_accuracy)).collect();
    out += &bar_chart("worst-group accuracy on the held-out split", &bars, 0.0, 1.0);
    for m in &r.methods {
        out += &format!("<p><b>{}</b>: {}.</p>", esc(&m.method), esc(&m.description));
    }
    out
}

/// Two audits side by side: each headline figure of `a`, its value, and
/// the value in `b` (None where `b` lacks it).
pub fn comparison(a: &AuditRecord, b: &AuditRecord) -> Result<Vec<(String, f64, Option<f64>)>> {
    if a.kind != b.kind {
        return Err(Error::usage("comparison", format!("a {:?} audit and a {:?} audit have no figures in common", a.kind, b.kind)));
    }
    let hb = headline(b)?;
    Ok(headline(a)?.into_iter().map(|(k, va)| {
        let vb = hb.iter().find(|(kb, _)| *kb == k).map(|x| x.1);
        (k, va, vb)
    }).collect())
}

/// Headline numbers of a record, for comparing two: (name, value).
pub fn headline(record: &AuditRecord) -> Result<Vec<(String, f64)>> {
    Ok(match record.kind {
        AuditKind::Associations => {
            let r: AssociationReport = record.typed()?;
            let mut v: Vec<(String, f64)> = r.targets.iter().map(|t| (format!("s({})", t.target), t.s)).collect();
            if let Some(w) = r.weat {
                v.push(("WEAT d".into(), w.d));
            }
            v
        }
        AuditKind::Folder => {
            let r: FolderReport = record.typed()?;
            let mut v = Vec::new();
            v.extend(r.ari.map(|a| ("ARI".to_string(), a)));
            v.extend(r.ami.map(|a| ("AMI".to_string(), a)));
            for c in &r.composition {
                v.extend(c.values.iter().map(|s| (format!("share {} = {}", c.attribute, s.value), s.share.value)));
            }
            if let Some(f) = &r.fairness {
                v.push(("worst pseudo-group accuracy".into(), f.worst_group_accuracy.value));
                v.push(("DP difference".into(), f.demographic_parity_difference.value));
            }
            v
        }
        AuditKind::Probe => {
            let r: ProbeReport = record.typed()?;
            r.prompts
                .iter()
                .flat_map(|p| {
                    p.shares
                        .iter()
                        .map(move |(v, e)| (format!("{} -> {v}", p.prompt), e.value))
                        .chain(p.nsfw.as_ref().map(|e| (format!("{} NSFW probability", p.prompt), e.value)))
                })
                .collect()
        }
        AuditKind::Debias => {
            let r: DebiasReport = record.typed()?;
            r.methods
                .iter()
                .flat_map(|m| {
                    [
                        (format!("{} overall", m.method), m.overall_accuracy.value),
                        (format!("{} worst group", m.method), m.worst_group_accuracy.value),
                    ]
                })
                .collect()
        }
    })
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}\
table{border-collapse:collapse;margin:.6rem 0;display:block;overflow-x:auto}th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}\
thead th{background:#eef}.note{background:#fff6dd;border-left:4px solid #d9a400;padding:.5rem 1rem}code{font-size:90%}figure{margin:.6rem 0}svg.bars{max-width:580px}";

/// The self-contained HTML report of `records` (titles from `names`, e.g. file names).
pub fn html(records: &[AuditRecord], names: &[String]) -> Result<String> {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>CLIP Lens audit report</title><style>{STYLE}</style></head><body><main><h1>CLIP Lens audit report</h1>"
    );
    out += &format!("<p class=\"note\"><b>What these labels are.</b> {}</p>", esc(PERCEIVED_NOTE));
    for (record, name) in records.iter().zip(names) {
        out += &format!(
            "<section><h2>{} audit: {}</h2><p>Model <b>{}</b>, weights sha256 <code>{}</code>{}; {}.</p>",
            match record.kind {
                AuditKind::Associations => "Prompt association",
                AuditKind::Folder => "Folder",
                AuditKind::Probe => "Inversion probe",
                AuditKind::Debias => "CLIP-debias",
            },
            esc(name),
            esc(&record.model.name),
            esc(&record.model.sha256),
            record.judge.as_ref().map_or(String::new(), |j| format!("; judge <b>{}</b> (<code>{}</code>)", esc(&j.name), esc(&j.sha256))),
            esc(&record.tool)
        );
        out += &match record.kind {
            AuditKind::Associations => associations_html(&record.typed()?),
            AuditKind::Folder => folder_html(&record.typed()?),
            AuditKind::Probe => probe_html(&record.typed()?),
            AuditKind::Debias => debias_html(&record.typed()?),
        };
        if let Some(Value::Array(w)) = record.result.get("warnings").filter(|w| w.as_array().is_some_and(|a| !a.is_empty())) {
            out += "<h3>Warnings</h3><ul>";
            for line in w {
                out += &format!("<li>{}</li>", esc(line.as_str().unwrap_or_default()));
            }
            out += "</ul>";
        }
        out += "</section>";
    }
    // Two audits of one kind: side by side.
    if let [a, b] = records
        && a.kind == b.kind
    {
        let rows: Vec<Vec<String>> = comparison(a, b)?
            .into_iter()
            .map(|(k, va, vb)| vec![k, num(va), vb.map_or("–".into(), num), vb.map_or("–".into(), |vb| format!("{:+.3}", vb - va))])
            .collect();
        out += &format!("<section><h2>Comparison: {} against {}</h2>", esc(&names[0]), esc(&names[1]));
        out += &table(&["figure", &names[0], &names[1], "difference"], &rows);
        out += "</section>";
    }
    let json = serde_json::to_string(records).map_err(|e| Error::usage("report", e.to_string()))?.replace("</", "<\\/");
    out += &format!(
        "<details><summary>The audits as JSON (settings, seeds, model sha256)</summary><script type=\"application/json\" id=\"audits\">{json}</script><p>Saved inside this file: open it in a text editor, or load it again with <code>cliplens audit report</code>.</p></details>"
    );
    Ok(out + "</main></body></html>")
}

/// The audits as long CSV rows: audit, figure, value.
pub fn csv(records: &[AuditRecord], names: &[String]) -> Result<String> {
    let mut out = String::from("audit,kind,figure,value\n");
    let quote = |s: &str| {
        let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
        format!("\"{}\"", s.replace('"', "\"\""))
    };
    for (record, name) in records.iter().zip(names) {
        for (figure, value) in headline(record)? {
            out += &format!("{},{},{},{}\n", quote(name), quote(&format!("{:?}", record.kind).to_lowercase()), quote(&figure), value);
        }
    }
    Ok(out)
}

/// The HTML report's embedded records (a report can be loaded again).
pub fn records_from_html(text: &str, origin: &str) -> Result<Vec<AuditRecord>> {
    let start =
        text.find("<script type=\"application/json\" id=\"audits\">").ok_or_else(|| Error::usage(origin, "holds no CLIP Lens audits"))?;
    let body = &text[start..];
    let body = &body[body.find('>').map_or(0, |i| i + 1)..];
    let end = body.find("</script>").ok_or_else(|| Error::usage(origin, "its audits are cut off"))?;
    serde_json::from_str(&body[..end].replace("<\\/", "</")).map_err(|e| Error::usage(origin, format!("its audits do not parse: {e}")))
}
