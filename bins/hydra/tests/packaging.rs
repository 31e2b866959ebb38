//! What an operator installs: the systemd unit, the default config, man
//! pages, shell completions and the version string.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::path::PathBuf;
use std::process::Command;

fn bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hydra")).with_file_name(name)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    // verify checks that ExecStart's program exists: point it at the built
    // binary instead of the install location; everything else is as shipped.
    let unit = std::fs::read_to_string(repo().join("packaging/hydra.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hydra.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/hydra", bin("hydra").to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian systemd, installed by scripts/install-test-deps)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("hydra.service"), "{err}");
}

#[test]
fn the_installed_default_config_is_valid() {
    let out = Command::new(bin("hydra"))
        .arg("--check-config")
        .arg(repo().join("packaging/hydra.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_pages_render_and_completions_load() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["hydra", "hydra-cat", "hydra-zabbix-get"] {
        let man = Command::new(bin(name))
            .args(["--generate", "man"])
            .output()
            .unwrap();
        assert!(man.status.success());
        let page = dir.path().join(format!("{name}.1"));
        std::fs::write(&page, &man.stdout).unwrap();
        let shown = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .expect("man (Debian man-db)");
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&shown.stderr)
        );
        assert!(
            text.contains("NAME") && text.contains(name),
            "{name}: {text}"
        );
        assert!(
            text.contains("--version"),
            "{name}: flags missing from the page"
        );

        let script = dir.path().join(format!("{name}.bash"));
        let completion = Command::new(bin(name))
            .args(["--generate", "complete-bash"])
            .output()
            .unwrap();
        std::fs::write(&script, &completion.stdout).unwrap();
        let loaded = Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p {name}", script.display()))
            .output()
            .unwrap();
        assert!(
            loaded.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        assert!(String::from_utf8_lossy(&loaded.stdout).contains(name));
        for kind in ["complete-zsh", "complete-fish"] {
            let out = Command::new(bin(name))
                .args(["--generate", kind])
                .output()
                .unwrap();
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "{name} {kind}"
            );
        }
    }
}

#[test]
fn version_names_the_git_revision_in_a_checkout() {
    let out = Command::new(bin("hydra"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("hydra {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let in_checkout = Command::new("git")
        .args(["-C", repo().to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    if in_checkout {
        assert!(text.contains("(git "), "{text}");
    }
}
