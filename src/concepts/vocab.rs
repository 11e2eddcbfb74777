//! Concept vocabularies: the word lists a decomposition may use. Concepts are
//! always referred to by their text (an index changes when a list does).
//!
//! Built in: SpLiCE's LAION lists (Apache-2.0 data, `models/vocab/SOURCE.md`),
//! exact or cleaned, and each world model's own words. Users may bring their
//! own list (one concept per line, encoded as written).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::quantize::sha256_hex;

/// The 10,000 most frequent single words of LAION-400m captions (SpLiCE's
/// default list), least frequent first, as SpLiCE ships them.
const LAION_10K: &str = include_str!("../../models/vocab/laion-10k.txt");
/// SpLiCE's 15k list: 5,001 two-word phrases, then 9,999 single words.
const LAION_BIGRAMS_15K: &str = include_str!("../../models/vocab/laion-bigrams-15k.txt");
/// English function words: they carry little meaning of their own and, in
/// the raw list, take weight from content words.
const STOPWORDS: &str = include_str!("../../models/vocab/stopwords.txt");
/// Sexual terms and slurs: out of the cleaned default (a class demo should not
/// show them), back in on request, since an audit may need exactly them.
const SENSITIVE: &str = include_str!("../../models/vocab/sensitive.txt");

/// The vocabularies CLIP Lens ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum BuiltinVocabulary {
    /// The LAION top 10,000 without stop words, punctuation and sensitive terms.
    LaionClean,
    /// The LAION top 10,000 as SpLiCE uses it (stop words and punctuation included).
    Laion10k,
    /// SpLiCE's 15,000 words and two-word phrases, as it ships them.
    LaionBigrams15k,
    /// The cleaned LAION list plus the sensitive terms it leaves out (for audits).
    LaionCleanWithSensitive,
    /// The words of the embedded world models' world, plus words they know
    /// that name no visual attribute (distractors).
    World,
}

impl BuiltinVocabulary {
    pub const ALL: [BuiltinVocabulary; 5] = [
        BuiltinVocabulary::LaionClean,
        BuiltinVocabulary::Laion10k,
        BuiltinVocabulary::LaionBigrams15k,
        BuiltinVocabulary::LaionCleanWithSensitive,
        BuiltinVocabulary::World,
    ];

    /// The name used in reports, URLs and `--vocab`.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinVocabulary::LaionClean => "laion-clean",
            BuiltinVocabulary::Laion10k => "laion-10k",
            BuiltinVocabulary::LaionBigrams15k => "laion-bigrams-15k",
            BuiltinVocabulary::LaionCleanWithSensitive => "laion-clean-with-sensitive",
            BuiltinVocabulary::World => "world",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// One line for a menu.
    pub fn describe(self) -> &'static str {
        match self {
            BuiltinVocabulary::LaionClean => "LAION top 10k, cleaned (no stop words, punctuation or sensitive terms)",
            BuiltinVocabulary::Laion10k => "LAION top 10k exactly as SpLiCE uses it",
            BuiltinVocabulary::LaionBigrams15k => "SpLiCE's 15k words and two-word phrases",
            BuiltinVocabulary::LaionCleanWithSensitive => "LAION top 10k cleaned, sensitive terms kept (for audits)",
            BuiltinVocabulary::World => "the embedded world's words and distractors",
        }
    }

    pub fn vocabulary(self) -> Vocabulary {
        let words: Vec<String> = match self {
            BuiltinVocabulary::Laion10k => lines(LAION_10K).map(str::to_string).collect(),
            BuiltinVocabulary::LaionBigrams15k => lines(LAION_BIGRAMS_15K).map(str::to_string).collect(),
            BuiltinVocabulary::LaionClean => clean(LAION_10K, false),
            BuiltinVocabulary::LaionCleanWithSensitive => clean(LAION_10K, true),
            BuiltinVocabulary::World => crate::world::vocabulary::concept_words().into_iter().map(str::to_string).collect(),
        };
        Vocabulary::new(self.name().to_string(), words)
    }
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim_end).filter(|l| !l.is_empty())
}

/// The terms the cleaned list leaves out as sensitive.
pub fn sensitive_terms() -> Vec<&'static str> {
    lines(SENSITIVE).collect()
}

fn clean(text: &str, keep_sensitive: bool) -> Vec<String> {
    let stop: Vec<&str> = lines(STOPWORDS).collect();
    let sensitive = sensitive_terms();
    lines(text)
        .filter(|w| w.split(' ').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase())))
        .filter(|w| !stop.contains(w))
        .filter(|w| keep_sensitive || !w.split(' ').any(|part| sensitive.contains(&part)))
        .map(str::to_string)
        .collect()
}

/// A list of concepts with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocabulary {
    /// A built-in name, or the file the list was read from.
    pub source: String,
    pub words: Vec<String>,
    /// SHA-256 of the words joined by newlines: names the list in caches and reports.
    pub sha256: String,
}

/// What a report says of the vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct VocabularyInfo {
    pub source: String,
    pub size: usize,
    pub sha256: String,
}

impl Vocabulary {
    pub fn new(source: String, words: Vec<String>) -> Self {
        let sha256 = sha256_hex(words.join("\n").as_bytes());
        Vocabulary { source, words, sha256 }
    }

    /// A user's list: one concept per line, encoded as written (surrounding
    /// spaces and a `\r` are dropped). Blank lines and repeats are skipped and
    /// counted in the returned warnings; an empty list is an error.
    pub fn from_text(source: &str, text: &str) -> Result<(Self, Vec<String>)> {
        let mut words: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let (mut blank, mut repeated) = (0usize, 0usize);
        for line in text.lines() {
            let word = line.trim();
            if word.is_empty() {
                blank += 1;
            } else if !seen.insert(word.to_string()) {
                repeated += 1;
            } else {
                words.push(word.to_string());
            }
        }
        if words.is_empty() {
            return Err(Error::usage(source, "holds no concepts: write one word or phrase per line"));
        }
        let mut warnings = Vec::new();
        if blank > 0 {
            warnings.push(format!("{source}: skipped {blank} blank line(s)"));
        }
        if repeated > 0 {
            warnings.push(format!("{source}: skipped {repeated} repeated concept(s)"));
        }
        Ok((Vocabulary::new(source.to_string(), words), warnings))
    }

    pub fn info(&self) -> VocabularyInfo {
        VocabularyInfo { source: self.source.clone(), size: self.words.len(), sha256: self.sha256.clone() }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_lists_are_shipped_whole() {
        let laion = BuiltinVocabulary::Laion10k.vocabulary();
        assert_eq!(laion.len(), 10_000);
        // The most frequent words come last, as in SpLiCE's file.
        assert_eq!(laion.words.last().map(String::as_str), Some("-"));
        assert!(laion.words.iter().any(|w| w == "the"));
        let bigrams = BuiltinVocabulary::LaionBigrams15k.vocabulary();
        assert_eq!(bigrams.len(), 15_000);
        assert!(bigrams.words.iter().any(|w| w == "stock photo"));
    }

    #[test]
    fn the_clean_list_drops_stop_words_punctuation_and_sensitive_terms() {
        let clean = BuiltinVocabulary::LaionClean.vocabulary();
        for gone in ["the", "of", "-", "&", "sexy", "nude"] {
            assert!(!clean.words.iter().any(|w| w == gone), "{gone} is still in the clean list");
        }
        for kept in ["dog", "beach", "woman", "bikini", "doctor"] {
            assert!(clean.words.iter().any(|w| w == kept), "{kept} was cleaned away");
        }
        assert!(clean.len() > 9_700, "{}", clean.len());
        let audit = BuiltinVocabulary::LaionCleanWithSensitive.vocabulary();
        assert_eq!(audit.len() - clean.len(), sensitive_terms().iter().filter(|t| audit.words.iter().any(|w| w == *t)).count());
        assert!(audit.words.iter().any(|w| w == "sexy"));
    }

    #[test]
    fn a_users_list_is_taken_as_written() {
        let (v, warnings) = Vocabulary::from_text("mine.txt", "red car\r\n\n  dog \nred car\n").unwrap();
        assert_eq!(v.words, vec!["red car", "dog"]);
        assert_eq!(warnings.len(), 2);
        assert_eq!(v.source, "mine.txt");
        let e = Vocabulary::from_text("empty.txt", "\n \n").unwrap_err();
        assert!(e.to_string().starts_with("empty.txt: holds no concepts"), "{e}");
        // The hash names the list, not the file.
        assert_eq!(Vocabulary::new("x".into(), v.words.clone()).sha256, v.sha256);
    }

    #[test]
    fn names_round_trip() {
        for v in BuiltinVocabulary::ALL {
            assert_eq!(BuiltinVocabulary::from_name(v.name()), Some(v));
        }
    }
}
