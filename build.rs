//! Turns the test opt-outs into `cfg`s, so a test left out is reported as
//! "ignored" in cargo's totals instead of passing without checking anything:
//! CLIPLENS_SKIP_WGPU=1 (no Vulkan here) and CLIPLENS_SKIP_BROWSER=1 (no
//! Chromium, Node or Trunk here). CI sets neither.

fn main() {
    for (variable, cfg) in [("CLIPLENS_SKIP_WGPU", "skip_wgpu"), ("CLIPLENS_SKIP_BROWSER", "skip_browser")] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={variable}");
        if std::env::var_os(variable).is_some_and(|v| !v.is_empty() && v != "0") {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
