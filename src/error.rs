//! One error type for the library. Every message is a single line that names
//! the file (or input) and the problem, because that line is what a user sees.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A weights file that cannot be used (truncated, not safetensors, not CLIP).
    Weights,
    /// A `config.json` or `preprocessor_config.json` problem.
    Config,
    /// A `tokenizer.json` problem.
    Tokenizer,
    /// An input image that cannot be decoded or is unreasonable.
    Image,
    /// A prompt that cannot be embedded.
    Prompt,
    /// Reading or writing a file failed.
    Io,
    /// The compute device failed (lost GPU, failed read-back).
    Device,
    /// Something other than a file is wrong: a CLI argument, a missing network.
    Usage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// The file or input the problem is about, as the user named it.
    pub origin: String,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, origin: impl Into<String>, message: impl Into<String>) -> Self {
        Error { kind, origin: origin.into(), message: message.into() }
    }
    pub fn weights(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Weights, origin, message)
    }
    /// A problem with one named tensor of a weights file.
    pub fn tensor(origin: impl Into<String>, tensor: &str, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Weights, origin, format!("tensor `{tensor}`: {message}"))
    }
    pub fn config(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, origin, message)
    }
    pub fn tokenizer(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Tokenizer, origin, message)
    }
    pub fn image(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Image, origin, message)
    }
    pub fn prompt(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Prompt, origin, message)
    }
    pub fn io(origin: impl Into<String>, err: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Io, origin, err.to_string())
    }
    pub fn device(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Device, "device", message)
    }
    pub fn usage(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, origin, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it on one line even if a dependency's message has newlines.
        let message = self.message.replace('\n', " ");
        write!(f, "{}: {}", self.origin, message)
    }
}

impl std::error::Error for Error {}
