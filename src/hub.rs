//! Models on the Hugging Face Hub: which files a CLIP model needs, their
//! URLs, and where the browser caches them. No fetching here: the web worker
//! and `cliplens prepare-models` each download with their own client.

/// The public Hub. A mirror can be named instead (`?hub=` on the page,
/// `--hub` on the CLI); the page's Content-Security-Policy must allow it.
pub const DEFAULT_HUB: &str = "https://huggingface.co";

/// The float checkpoint downloaded from the Hub.
pub const FLOAT_WEIGHTS: &str = "model.safetensors";
/// The int8 file made from it, which is what gets cached and loaded.
pub const INT8_WEIGHTS: &str = "model.int8.safetensors";

/// The small files of a model, and whether a model is usable without each.
pub const SIDE_FILES: [(&str, bool); 3] = [
    ("config.json", true),
    ("tokenizer.json", true),
    ("preprocessor_config.json", false),
];

/// A model repository on the Hub, at a revision (branch, tag or commit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubModel {
    pub repo: String,
    pub revision: String,
}

impl HubModel {
    /// Reads `owner/name`, `owner/name@revision` or a Hub page URL
    /// (`https://huggingface.co/owner/name`, optionally `/tree/revision`).
    pub fn parse(text: &str) -> Result<HubModel, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("type a Hugging Face model id, e.g. openai/clip-vit-base-patch32".into());
        }
        let path = text
            .strip_prefix("https://huggingface.co/")
            .or_else(|| text.strip_prefix("http://huggingface.co/"))
            .or_else(|| text.strip_prefix("huggingface.co/"))
            .unwrap_or(text)
            .trim_end_matches('/');
        let (path, revision) = match path.split_once('@') {
            Some((p, r)) => (p, r.to_string()),
            None => match path.split_once("/tree/") {
                Some((p, r)) => (p, r.to_string()),
                None => (path, "main".to_string()),
            },
        };
        let parts: Vec<&str> = path.split('/').collect();
        let valid_part = |p: &str| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if parts.len() != 2 || !parts.iter().all(|p| valid_part(p)) {
            return Err(format!(
                "`{text}` is not a Hugging Face model id: expected owner/name, e.g. openai/clip-vit-base-patch32"
            ));
        }
        let valid_revision = !revision.is_empty()
            && !revision.contains("..")
            && revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !valid_revision {
            return Err(format!("`{revision}` is not a revision name (branch, tag or commit)"));
        }
        Ok(HubModel {
            repo: parts.join("/"),
            revision,
        })
    }

    /// `owner/name`, with `@revision` unless it is `main`.
    pub fn label(&self) -> String {
        if self.revision == "main" {
            self.repo.clone()
        } else {
            format!("{}@{}", self.repo, self.revision)
        }
    }

    /// Where `file` is downloaded from on `hub` (no trailing slash needed).
    pub fn file_url(&self, hub: &str, file: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{file}",
            hub.trim_end_matches('/'),
            self.repo,
            self.revision
        )
    }

    /// The browser cache's key for this model's `file`. A key, never fetched:
    /// it is not a path the site serves, so it cannot collide with one.
    pub fn cache_key(&self, hub: &str, file: &str) -> String {
        let host = hub
            .trim_end_matches('/')
            .rsplit("//")
            .next()
            .unwrap_or(hub)
            .replace('/', "_");
        format!(
            "cliplens-hub-cache/{host}/{}/{}/{file}",
            self.repo, self.revision
        )
    }
}

impl HubModel {
    /// The Hub API listing of the repository's files at the revision, with
    /// each Git LFS file's size and sha256 (`lfs.oid`): the digest to check
    /// a download against, read before the download starts.
    pub fn tree_url(&self, hub: &str) -> String {
        format!("{}/api/models/{}/tree/{}", hub.trim_end_matches('/'), self.repo, self.revision.replace('/', "%2F"))
    }
}

/// A file as the Hub's tree listing describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubFile {
    pub path: String,
    pub bytes: u64,
    /// The sha256 of a Git LFS file (weights); `None` for small files kept in git.
    pub sha256: Option<String>,
}

/// Reads the Hub's `api/models/<repo>/tree/<revision>` answer.
pub fn parse_tree(json: &[u8]) -> Result<Vec<HubFile>, String> {
    #[derive(serde::Deserialize)]
    struct Lfs {
        oid: String,
        size: u64,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "type")]
        kind: String,
        path: String,
        #[serde(default)]
        size: u64,
        lfs: Option<Lfs>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(json).map_err(|e| format!("the Hub's file list is not what it should be ({e})"))?;
    Ok(entries
        .into_iter()
        .filter(|e| e.kind == "file")
        .map(|e| {
            let sha256 = e.lfs.as_ref().and_then(|l| etag_sha256(&l.oid));
            HubFile { path: e.path, bytes: e.lfs.map_or(e.size, |l| l.size), sha256 }
        })
        .collect())
}

/// Checks a mirror named by `?hub=`: the page fetches model weights from it,
/// so it must be the public Hub, an `https` address, or the page's own origin
/// (`page_origin`, e.g. `http://127.0.0.1:8080`: a same-site mirror). Plain
/// `http` elsewhere is refused: anyone on the way could swap the weights.
/// Returns the address without a trailing slash.
pub fn check_mirror(hub: &str, page_origin: &str) -> Result<String, String> {
    let hub = hub.trim().trim_end_matches('/');
    let own = page_origin.trim_end_matches('/');
    let same_origin = hub == own || hub.strip_prefix(own).is_some_and(|rest| rest.starts_with('/'));
    let Some(rest) = hub.strip_prefix("https://").filter(|_| !same_origin).or(same_origin.then_some("")) else {
        return Err(format!(
            "`{hub}` is not a mirror CLIP Lens will download from: use an https:// address (or this site's own), so nobody on the way can swap the weights"
        ));
    };
    let host = rest.split('/').next().unwrap_or("");
    let bad_host = !same_origin
        && (host.is_empty()
            || host.contains('@')
            || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')));
    if bad_host || hub.contains(['?', '#', ' ']) {
        return Err(format!("`{hub}` is not a plain https:// address of a Hugging Face mirror"));
    }
    Ok(hub.to_string())
}

/// The sha256 a Hub response vouches for, if its ETag is one. The Hub's
/// ETag for files stored with Git LFS is their sha256 (quoted, maybe weak);
/// small files get a git blob hash (40 hex digits), which is not a sha256.
pub fn etag_sha256(etag: &str) -> Option<String> {
    let tag = etag.trim().trim_start_matches("W/").trim_matches('"');
    (tag.len() == 64 && tag.chars().all(|c| c.is_ascii_hexdigit())).then(|| tag.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_urls_and_revisions() {
        let m = HubModel::parse(" openai/clip-vit-base-patch32 ").unwrap();
        assert_eq!(m.repo, "openai/clip-vit-base-patch32");
        assert_eq!(m.revision, "main");
        assert_eq!(m.label(), "openai/clip-vit-base-patch32");
        let url = HubModel::parse("https://huggingface.co/openai/clip-vit-base-patch16/tree/v1.0").unwrap();
        assert_eq!(url.repo, "openai/clip-vit-base-patch16");
        assert_eq!(url.revision, "v1.0");
        let at = HubModel::parse("laion/CLIP-ViT-B-32-laion2B-s34B-b79K@3a4f").unwrap();
        assert_eq!(at.label(), "laion/CLIP-ViT-B-32-laion2B-s34B-b79K@3a4f");
    }

    #[test]
    fn rejects_what_is_not_an_id() {
        for bad in ["", "clip", "a/b/c", "../etc/passwd", "owner/na me", "owner/name@", "o/n@../x", "o/.git"] {
            let err = HubModel::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
    }

    #[test]
    fn urls_and_cache_keys() {
        let m = HubModel::parse("openai/clip-vit-base-patch32").unwrap();
        assert_eq!(
            m.file_url("https://huggingface.co/", "config.json"),
            "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/config.json"
        );
        assert_eq!(
            m.cache_key("https://huggingface.co", INT8_WEIGHTS),
            "cliplens-hub-cache/huggingface.co/openai/clip-vit-base-patch32/main/model.int8.safetensors"
        );
        // A mirror's files are cached apart from the Hub's.
        assert_ne!(
            m.cache_key("http://127.0.0.1:8080/hub", INT8_WEIGHTS),
            m.cache_key(DEFAULT_HUB, INT8_WEIGHTS)
        );
    }

    #[test]
    fn tree_listings() {
        let m = HubModel::parse("openai/clip-vit-base-patch32@refs/pr/1").unwrap();
        assert_eq!(m.tree_url("https://huggingface.co"), "https://huggingface.co/api/models/openai/clip-vit-base-patch32/tree/refs%2Fpr%2F1");
        let sha = "a".repeat(64);
        let json = format!(
            r#"[{{"type":"file","oid":"5c1b","size":4519,"path":"config.json"}},
               {{"type":"directory","oid":"9","size":0,"path":"onnx"}},
               {{"type":"file","oid":"f8c3","size":135,"path":"model.safetensors","lfs":{{"oid":"{sha}","size":605157884,"pointerSize":135}}}}]"#
        );
        let files = parse_tree(json.as_bytes()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], HubFile { path: "config.json".into(), bytes: 4519, sha256: None });
        assert_eq!(files[1], HubFile { path: "model.safetensors".into(), bytes: 605157884, sha256: Some(sha) });
        assert!(parse_tree(b"{\"error\":\"Repository not found\"}").is_err());
    }

    #[test]
    fn mirrors_must_be_https_or_this_site() {
        let page = "http://127.0.0.1:8080";
        assert_eq!(check_mirror("https://huggingface.co/", page).unwrap(), "https://huggingface.co");
        assert_eq!(check_mirror("https://hf-mirror.example.org/hub", page).unwrap(), "https://hf-mirror.example.org/hub");
        assert_eq!(check_mirror("http://127.0.0.1:8080/hub", page).unwrap(), "http://127.0.0.1:8080/hub");
        for bad in [
            "http://evil.example.com",
            "http://127.0.0.1:8081/hub",
            "http://127.0.0.1:80800/hub",
            "ftp://x.org",
            "javascript:alert(1)",
            "https://user:pw@x.org",
            "https://x.org/?a=b",
            "https://",
            "//x.org",
        ] {
            assert!(check_mirror(bad, page).is_err(), "{bad}");
        }
    }

    #[test]
    fn etags() {
        let sha = "a".repeat(64);
        assert_eq!(etag_sha256(&format!("\"{sha}\"")), Some(sha.clone()));
        assert_eq!(etag_sha256(&format!("W/\"{}\"", sha.to_uppercase())), Some(sha));
        assert_eq!(etag_sha256("\"0123456789abcdef0123456789abcdef01234567\""), None);
        assert_eq!(etag_sha256(""), None);
    }
}
