//! Our tokenization of the real CLIP tokenizer.json equals transformers' on
//! a committed list of varied prompts (tests/fixtures/tokenizer_parity.json).

mod common;

use cliplens::tokenizer::ClipTokenizer;
use common::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    attention_mask: Vec<u8>,
    ids_full: Vec<u32>,
}

#[derive(Deserialize)]
struct Cases {
    tokenizer_sha256: String,
    cases: Vec<Case>,
}

fn real_tokenizer() -> (ClipTokenizer, Vec<u8>) {
    let path = shared_data().join("clip-vit-base-patch32/tokenizer.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (ClipTokenizer::from_json(&bytes, "tokenizer.json", 77).unwrap(), bytes)
}

#[test]
fn ids_equal_transformers_on_every_prompt() {
    let (tokenizer, bytes) = real_tokenizer();
    let cases: Cases = serde_json::from_slice(&std::fs::read(fixtures().join("tokenizer_parity.json")).unwrap()).unwrap();
    assert_eq!(cases.tokenizer_sha256, cliplens::quantize::sha256_hex(&bytes), "the fixture was made from another tokenizer");
    assert!(cases.cases.len() >= 200, "only {} prompts", cases.cases.len());
    let mut failures = Vec::new();
    let mut truncated = 0;
    for case in &cases.cases {
        let ours = tokenizer.encode(&case.text).unwrap();
        if ours.ids != case.ids || ours.attention_mask != case.attention_mask {
            failures.push(format!("{:?}\n  ours   {:?}\n  theirs {:?}", case.text, ours.ids, case.ids));
        }
        // ids_full = BOS + every text token + EOS, untruncated.
        let dropped = case.ids_full.len().saturating_sub(77);
        assert_eq!(ours.dropped_tokens, dropped, "{:?}: dropped tokens", case.text);
        truncated += usize::from(dropped > 0);
    }
    assert!(failures.is_empty(), "{} of {} prompts differ:\n{}", failures.len(), cases.cases.len(), failures.join("\n"));
    assert!(truncated >= 3, "the fixture should hold several overlong prompts");
}

#[test]
fn known_ids_of_the_real_tokenizer() {
    let (tokenizer, _) = real_tokenizer();
    let cat = tokenizer.encode("a photo of a cat").unwrap();
    assert_eq!(&cat.ids[..7], &[49406, 320, 1125, 539, 320, 2368, 49407]);
    assert!(cat.ids[7..].iter().all(|&id| id == 49407), "padded with EOS");
    assert_eq!(cat.attention_mask.iter().filter(|&&m| m == 1).count(), 7);
}

#[test]
fn overlong_prompts_are_truncated_not_rejected() {
    let (tokenizer, _) = real_tokenizer();
    let long = "a very long prompt ".repeat(40);
    let t = tokenizer.encode(&long).unwrap();
    assert_eq!(t.ids.len(), 77);
    assert_eq!(t.ids[76], 49407, "ends with EOS");
    assert!(t.dropped_tokens > 0);
}
