//! `models/manifest.json`: the models a deployment serves, with the sha256 of
//! every file so a download can be verified before it is used.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const MANIFEST_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub models: Vec<ManifestModel>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestModel {
    /// Hub id (`openai/clip-vit-base-patch32`) or a CLIP Lens name.
    pub id: String,
    /// Directory under `models/` holding the files.
    pub dir: String,
    pub files: Vec<ManifestFile>,
    /// sha256 of the float checkpoint the int8 file was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// Free text: where it came from, what it measured.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Error::config(origin, format!("not a model manifest: {e}")))?;
        if manifest.format_version != MANIFEST_VERSION {
            return Err(Error::config(
                origin,
                format!("manifest format_version {} is not {MANIFEST_VERSION}", manifest.format_version),
            ));
        }
        Ok(manifest)
    }

    /// Replaces the entry with the same id, or appends.
    pub fn upsert(&mut self, model: ManifestModel) {
        self.models.retain(|m| m.id != model.id);
        self.models.push(model);
    }

    pub fn find(&self, id: &str) -> Option<&ManifestModel> {
        self.models.iter().find(|m| m.id == id)
    }
}

impl ManifestModel {
    /// An entry describing `files` (name, bytes) kept in `dir`.
    pub fn describe(id: &str, dir: &str, files: &[(String, Vec<u8>)], notes: String) -> Self {
        ManifestModel {
            id: id.to_string(),
            dir: dir.to_string(),
            files: files
                .iter()
                .map(|(name, bytes)| ManifestFile {
                    name: name.clone(),
                    bytes: bytes.len() as u64,
                    sha256: crate::quantize::sha256_hex(bytes),
                })
                .collect(),
            source_sha256: None,
            notes,
        }
    }

    /// The listed file called `name`.
    pub fn file(&self, name: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The files a browser fetches to run this model: config, tokenizer,
    /// preprocessor config if listed, and one weights file (int8 when listed:
    /// a quarter of the download for the same zero-shot decisions).
    pub fn files_to_fetch(&self) -> Result<Vec<&ManifestFile>> {
        let mut out = Vec::new();
        for name in ["config.json", "tokenizer.json"] {
            out.push(self.file(name).ok_or_else(|| Error::config(&self.id, format!("the manifest lists no `{name}`")))?);
        }
        out.extend(self.file("preprocessor_config.json"));
        // A model's own image mean, for concept decomposition (world models).
        out.extend(self.file("image_mean.json"));
        let names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        let weights = crate::clip::pick_weights(&names, true)
            .map_err(|_| Error::config(&self.id, "the manifest lists no single weights file"))?;
        out.push(&self.files[weights]);
        Ok(out)
    }

    /// Checks `bytes` against the recorded size and sha256 of file `name`.
    pub fn verify(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let Some(file) = self.file(name) else {
            return Err(Error::config(&self.id, format!("the manifest lists no file `{name}`")));
        };
        if file.bytes != bytes.len() as u64 {
            return Err(Error::weights(
                format!("{}/{name}", self.dir),
                format!("is {} bytes, the manifest says {} (truncated download?)", bytes.len(), file.bytes),
            ));
        }
        let actual = crate::quantize::sha256_hex(bytes);
        if actual != file.sha256 {
            return Err(Error::weights(
                format!("{}/{name}", self.dir),
                format!("sha256 {actual} does not match the manifest's {}", file.sha256),
            ));
        }
        Ok(())
    }
}
