//! CLIP tokenization with the `tokenizers` crate from any CLIP `tokenizer.json`:
//! `[BOS] tokens [EOS]`, truncated and padded (with EOS, as transformers does)
//! to the model's context length.

use crate::error::{Error, Result};
#[cfg(feature = "compute")]
use crate::model::TokenBatch;

#[cfg(feature = "compute")]
const BOS: &str = "<|startoftext|>";
#[cfg(feature = "compute")]
const EOS: &str = "<|endoftext|>";

#[cfg(feature = "compute")]
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    bos: u32,
    eos: u32,
    context_length: usize,
}

/// One prompt's tokens, already padded to the context length.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    pub attention_mask: Vec<u8>,
    /// Number of text tokens dropped to fit the context (0 when it fit).
    pub dropped_tokens: usize,
}

#[cfg(feature = "compute")]
impl ClipTokenizer {
    /// Parses a `tokenizer.json`; `origin` names it in errors.
    pub fn from_json(bytes: &[u8], origin: &str, context_length: usize) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::tokenizer(origin, format!("not a valid tokenizer.json: {e}")))?;
        // We truncate and pad ourselves; settings stored in the file would interfere.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::tokenizer(origin, format!("cannot disable truncation: {e}")))?;
        let special = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| Error::tokenizer(origin, format!("has no `{token}` token: not a CLIP tokenizer")))
        };
        let (bos, eos) = (special(BOS)?, special(EOS)?);
        if context_length < 2 {
            return Err(Error::config(origin, format!("context length {context_length} leaves no room for text")));
        }
        Ok(ClipTokenizer { inner, bos, eos, context_length })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Tokenizes one prompt. Overlong prompts are truncated (see
    /// `dropped_tokens`), never rejected.
    pub fn encode(&self, text: &str) -> Result<Tokenized> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::prompt(quote(text), format!("cannot be tokenized: {e}")))?;
        let text_ids = encoding.get_ids();
        let room = self.context_length - 2;
        let kept = text_ids.len().min(room);
        let mut ids = Vec::with_capacity(self.context_length);
        ids.push(self.bos);
        ids.extend_from_slice(&text_ids[..kept]);
        ids.push(self.eos);
        let real = ids.len();
        ids.resize(self.context_length, self.eos);
        let mut attention_mask = vec![1u8; real];
        attention_mask.resize(self.context_length, 0);
        Ok(Tokenized { ids, attention_mask, dropped_tokens: text_ids.len() - kept })
    }
}

#[cfg(feature = "compute")]
impl TokenBatch {
    /// Stacks prompts into one batch of their first `len` tokens (the whole
    /// context, or less when the rest is padding for every prompt).
    pub fn from_tokenized(tokens: &[Tokenized], len: usize) -> Self {
        debug_assert!(tokens.iter().all(|t| t.ids.len() >= len));
        TokenBatch {
            ids: tokens.iter().flat_map(|t| t.ids[..len].iter().copied()).collect(),
            attention_mask: tokens.iter().flat_map(|t| t.attention_mask[..len].iter().copied()).collect(),
            batch: tokens.len(),
            len,
        }
    }
}

/// A prompt as it appears in messages: quoted, and shortened if long.
pub fn quote(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        format!("prompt {text:?}")
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("prompt {:?}", head + "…")
    }
}
