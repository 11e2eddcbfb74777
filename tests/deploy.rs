//! The deployment headers are one list in several places: `www/_headers` (the
//! source), Trunk.toml's `[serve.headers]` (for `trunk serve`), the nginx block
//! in docs/DEPLOY.md, and index.html's meta tag (the policy without
//! `frame-ancestors`, which a meta tag cannot carry). They must not drift.

use std::path::PathBuf;

fn read(path: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// (name, value) pairs of `www/_headers`.
fn shipped() -> Vec<(String, String)> {
    read("www/_headers")
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| {
            let (k, v) = l.trim().split_once(": ").expect("Name: value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn the_policy_covers_the_worker_framing_and_connections() {
    let headers = shipped();
    let csp = &headers.iter().find(|(k, _)| k == "Content-Security-Policy").expect("a CSP").1;
    for directive in ["worker-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "frame-ancestors 'none'", "object-src 'none'", "connect-src 'self' https://huggingface.co"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("'unsafe-inline'") && !csp.contains("'unsafe-eval'"), "{csp}");
    assert!(read("www/_headers").lines().any(|l| l == "/*"), "the headers must apply to every file");
}

#[test]
fn trunk_serve_sends_the_shipped_headers() {
    let trunk: toml_lines::Table = toml_lines::serve_headers(&read("Trunk.toml"));
    assert_eq!(trunk, shipped());
}

#[test]
fn the_nginx_block_sends_the_shipped_headers() {
    let doc = read("docs/DEPLOY.md");
    let nginx: Vec<(String, String)> = doc
        .lines()
        .filter_map(|l| l.trim().strip_prefix("add_header "))
        .map(|l| {
            let (k, rest) = l.split_once(' ').unwrap();
            let v = rest.trim_end_matches(" always;").trim_matches('"');
            (k.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(nginx, shipped());
}

#[test]
fn the_meta_tag_is_the_policy_without_frame_ancestors() {
    let html = read("index.html");
    let meta = html.split("http-equiv=\"Content-Security-Policy\" content=\"").nth(1).unwrap().split('"').next().unwrap();
    let headers = shipped();
    let csp = &headers.iter().find(|(k, _)| k == "Content-Security-Policy").unwrap().1;
    assert_eq!(format!("{meta}; frame-ancestors 'none'"), *csp);
    // Trunk copies the headers file and the worker's GPU hooks into the build.
    assert!(html.contains(r#"rel="copy-file" href="www/_headers""#) && html.contains(r#"href="www/gpu_hooks.js""#));
}

/// `[serve.headers]` of Trunk.toml: `"Name" = "value"` lines (no TOML crate needed for these).
mod toml_lines {
    pub type Table = Vec<(String, String)>;
    pub fn serve_headers(text: &str) -> Table {
        text.split("[serve.headers]")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| !l.starts_with('['))
            .filter_map(|l| {
                let (k, v) = l.split_once(" = ")?;
                Some((k.trim_matches('"').to_string(), v.trim().trim_matches('"').to_string()))
            })
            .collect()
    }
}
