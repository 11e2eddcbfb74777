//! The user's CSV files (labels: `file` plus attribute columns; predictions:
//! `file`, `label`, `prediction`, optionally `loss`), read so that every
//! problem names the file, the line and the column, and a bad row costs only
//! itself.

use std::collections::HashMap;

use crate::{Error, Result};

/// A CSV with a `file` column, rows keyed by file name.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub source: String,
    pub columns: Vec<String>,
    /// (line number, file name, all fields).
    pub rows: Vec<(u64, String, Vec<String>)>,
}

/// The last path component, so `imgs/a.png`, `imgs\a.png` and `a.png` match.
pub fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

impl Table {
    /// Parses `bytes`; a missing required column (or no `file` column) is an
    /// error, a bad row a problem line and the row is skipped.
    pub fn parse(bytes: &[u8], source: &str, required: &[&str]) -> Result<(Table, Vec<String>)> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
        let header =
            reader.headers().map_err(|e| Error::usage(format!("{source}: line 1"), format!("cannot read the header: {e}")))?.clone();
        let columns: Vec<String> = header.iter().map(|c| c.trim_start_matches('\u{feff}').to_string()).collect();
        for want in std::iter::once(&"file").chain(required) {
            if !columns.iter().any(|c| c == want) {
                return Err(Error::usage(
                    format!("{source}: line 1"),
                    format!("no column {want:?} (the header has: {})", columns.join(", ")),
                ));
            }
        }
        let file_col = columns.iter().position(|c| c == "file").expect("checked above");
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut seen: HashMap<String, u64> = HashMap::new();
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    problems.push(format!("{source}: line {line}: {e}; row skipped"));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() != columns.len() {
                problems.push(format!(
                    "{source}: line {line}: {} fields where the header has {}; row skipped",
                    record.len(),
                    columns.len()
                ));
                continue;
            }
            let fields: Vec<String> = record.iter().map(str::to_string).collect();
            let file = base_name(&fields[file_col]).to_string();
            if file.is_empty() {
                problems.push(format!("{source}: line {line}, column file: empty; row skipped"));
                continue;
            }
            if let Some(first) = seen.get(&file) {
                problems.push(format!("{source}: line {line}, column file: {file:?} repeats line {first}; line {first} is kept"));
                continue;
            }
            seen.insert(file.clone(), line);
            rows.push((line, file, fields));
        }
        if rows.is_empty() {
            problems.push(format!("{source}: no usable rows"));
        }
        Ok((Table { source: source.to_string(), columns, rows }, problems))
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// For each of `files` (by base name), its row index, if any; rows naming
    /// no such file are reported.
    pub fn match_files(&self, files: &[String]) -> (Vec<Option<usize>>, Vec<String>) {
        let index: HashMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (base_name(f), i)).collect();
        let mut matched = vec![None; files.len()];
        let mut problems = Vec::new();
        for (r, (line, file, _)) in self.rows.iter().enumerate() {
            match index.get(file.as_str()) {
                Some(&i) => matched[i] = Some(r),
                None => problems.push(format!("{}: line {line}, column file: {file:?} is not among the images; row ignored", self.source)),
            }
        }
        (matched, problems)
    }

    /// A column's text for each matched row; empty cells are reported and become None.
    pub fn text(&self, column: &str, matched: &[Option<usize>], problems: &mut Vec<String>) -> Vec<Option<String>> {
        let col = self.column(column).expect("a checked column");
        matched
            .iter()
            .map(|m| {
                let (line, _, fields) = &self.rows[(*m)?];
                let v = &fields[col];
                if v.is_empty() {
                    problems.push(format!("{}: line {line}, column {column}: empty; row left out of this column's figures", self.source));
                    None
                } else {
                    Some(v.clone())
                }
            })
            .collect()
    }

    /// A numeric column; values that are not numbers are reported and become None.
    pub fn numbers(&self, column: &str, matched: &[Option<usize>], problems: &mut Vec<String>) -> Vec<Option<f64>> {
        let col = self.column(column).expect("a checked column");
        matched
            .iter()
            .map(|m| {
                let (line, _, fields) = &self.rows[(*m)?];
                match fields[col].parse::<f64>() {
                    Ok(v) if v.is_finite() => Some(v),
                    _ => {
                        problems.push(format!(
                            "{}: line {line}, column {column}: {:?} is not a number; row left out",
                            self.source, fields[col]
                        ));
                        None
                    }
                }
            })
            .collect()
    }
}

/// An optional CSV's parse result as the audit takes it: its row problems
/// join `problems`, and a CSV that fails as a whole becomes one more problem
/// line (the audit goes on without it) instead of an error.
pub fn or_problem(parsed: Result<(Table, Vec<String>)>, problems: &mut Vec<String>) -> Option<Table> {
    match parsed {
        Ok((t, p)) => {
            problems.extend(p);
            Some(t)
        }
        Err(e) => {
            problems.push(format!("{e}; the audit goes on without it"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_file_line_and_column() {
        let csv = b"file,group,loss\na.png,glim,0.5\nb.png,vorn\nc.png,vorn,abc\na.png,vorn,1\nzz.png,glim,1\n";
        let (t, problems) = Table::parse(csv, "labels.csv", &["group"]).unwrap();
        assert_eq!(
            problems,
            vec![
                "labels.csv: line 3: 2 fields where the header has 3; row skipped",
                "labels.csv: line 5, column file: \"a.png\" repeats line 2; line 2 is kept",
            ]
        );
        let files = vec!["dir/a.png".to_string(), "dir/c.png".to_string()];
        let (matched, unknown) = t.match_files(&files);
        assert_eq!(unknown, vec!["labels.csv: line 6, column file: \"zz.png\" is not among the images; row ignored"]);
        let mut p = Vec::new();
        let loss = t.numbers("loss", &matched, &mut p);
        assert_eq!(loss, vec![Some(0.5), None]);
        assert_eq!(p, vec!["labels.csv: line 4, column loss: \"abc\" is not a number; row left out"]);
        let missing = Table::parse(b"name,group\n", "p.csv", &["label"]).unwrap_err().to_string();
        assert_eq!(missing, "p.csv: line 1: no column \"file\" (the header has: name, group)");
    }
}
