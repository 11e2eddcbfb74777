//! The world model's tokenizer: one token per word of the world's language
//! (a Hugging Face `WordLevel` tokenizer.json, lower-cased, split on
//! whitespace and punctuation), with CLIP's start and end tokens so the
//! model directory loads like any CLIP model's.

use serde_json::{Value, json};

use super::{ATTRIBUTES, GROUPS, ROLES};

pub const BOS: &str = "<|startoftext|>";
pub const EOS: &str = "<|endoftext|>";
pub const UNK: &str = "<|unk|>";

/// Ids 0, 1, 2. The end token is not id 2 on purpose: transformers pools CLIP
/// text at the largest id when `eos_token_id == 2` (a legacy rule), and at the
/// first end token otherwise, which is what a word-level vocabulary needs.
const SPECIAL: [&str; 3] = [BOS, EOS, UNK];
pub const BOS_ID: u32 = 0;
pub const EOS_ID: u32 = 1;

/// Words the captions use besides attribute values, groups and roles.
const GLUE: &[&str] = &[
    "a", "an", "photo", "picture", "image", "drawing", "of", "there", "is", "are", "dressed", "as", "on", "in", "at",
    "the", "figure", "figures", "circles", "squares", "triangles", "stars", ",", ".", "and", "with",
];

/// Every word of the world, in id order after the special tokens.
pub fn words() -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut add = |w: &str| {
        if !words.iter().any(|x| x == w) {
            words.push(w.to_string());
        }
    };
    for attribute in &ATTRIBUTES {
        attribute.values.iter().for_each(|v| add(v));
    }
    GROUPS.iter().for_each(|g| add(g));
    for role in &ROLES {
        add(role.word);
        add(role.plural);
    }
    GLUE.iter().for_each(|w| add(w));
    words
}

/// Words of the world that carry no meaning of their own (articles,
/// prepositions, punctuation, the verbs of the caption templates).
const FUNCTION_WORDS: &[&str] =
    &["a", "an", "of", "there", "is", "are", "dressed", "as", "on", "in", "at", "the", ",", ".", "and", "with"];

/// The concept vocabulary of a world model: every word the world uses that
/// has a meaning (attribute values, groups, roles and their plurals, shape
/// plurals) plus the words the model knows that name no attribute ("photo",
/// "figure", ...: the distractors a decomposition should leave alone).
pub fn concept_words() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for attribute in &ATTRIBUTES {
        out.extend(attribute.values.iter().copied());
    }
    out.extend(GROUPS.iter().copied());
    for role in &ROLES {
        out.push(role.word);
        out.push(role.plural);
    }
    out.extend(GLUE.iter().copied().filter(|w| !FUNCTION_WORDS.contains(w)));
    let mut seen = std::collections::HashSet::new();
    out.retain(|w| seen.insert(*w));
    out
}

/// Size of the vocabulary, special tokens included.
pub fn vocab_size() -> usize {
    SPECIAL.len() + words().len()
}

/// The `tokenizer.json` text.
pub fn tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    for (id, token) in SPECIAL.iter().map(|s| s.to_string()).chain(words()).enumerate() {
        vocab.insert(token, json!(id));
    }
    let added: Vec<Value> = SPECIAL
        .iter()
        .enumerate()
        .map(|(id, t)| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    let special = |t: &str, id: u32| json!({"id": t, "ids": [id], "tokens": [t]});
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": BOS, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": EOS, "type_id": 0}}
            ],
            "pair": [
                {"SpecialToken": {"id": BOS, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": EOS, "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": EOS, "type_id": 1}}
            ],
            "special_tokens": {BOS: special(BOS, BOS_ID), EOS: special(EOS, EOS_ID)}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK}
    });
    serde_json::to_string_pretty(&tokenizer).expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::ClipTokenizer;
    use crate::world::captions::{Task, full_caption, training_caption, zero_shot_prompts};
    use crate::world::{Rng, scenes};

    #[test]
    fn every_caption_and_prompt_is_in_the_vocabulary() {
        let tokenizer = ClipTokenizer::from_json(tokenizer_json().as_bytes(), "world tokenizer", 32).unwrap();
        let unk = 2; // id of UNK
        let mut rng = Rng::new(4);
        let mut texts: Vec<String> = Vec::new();
        for scene in scenes(9, 300) {
            texts.push(full_caption(&scene));
            texts.push(training_caption(&scene, &mut rng));
        }
        for task in Task::all() {
            for v in 0..task.classes() {
                texts.extend(zero_shot_prompts(task, v));
            }
        }
        for text in &texts {
            let t = tokenizer.encode(text).unwrap();
            assert_eq!(t.dropped_tokens, 0, "{text}");
            assert!(!t.ids.contains(&unk), "{text} has an unknown word");
        }
        let t = tokenizer.encode("A Photo of a RED circle").unwrap();
        assert_eq!(&t.ids[..3], &[BOS_ID, 3 + words().iter().position(|w| w == "a").unwrap() as u32, 3 + words().iter().position(|w| w == "photo").unwrap() as u32]);
    }
}
