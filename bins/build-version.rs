//! Build script shared by hydra's binaries: sets `HYDRA_VERSION` to the
//! package version, plus the git revision when built from a checkout.
#![allow(clippy::print_stdout)] // a build script talks to cargo on stdout

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let full = match git(&["rev-parse", "--short=10", "HEAD"]) {
        Some(rev) => format!("{version} (git {rev})"),
        None => version,
    };
    println!("cargo:rustc-env=HYDRA_VERSION={full}");
    // Rebuild the string when the checkout moves to another commit.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
    }
    // Each binary's `build.rs` is this file (a link in the checkout, a
    // copy in a published package): naming a file that does not exist
    // would make cargo re-run it and relink every binary on every build.
    println!("cargo:rerun-if-changed=build.rs");
}
