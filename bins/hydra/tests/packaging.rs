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

#[test]
fn the_debian_package_holds_everything_and_lintian_finds_nothing_wrong() {
    // Built from the test build's binaries (stripped by the script), so
    // the test command needs no release build; packaging/build-deb alone
    // builds the release.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("packaging/build-deb"))
        .arg("--bins")
        .arg(bin("hydra").parent().unwrap())
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let name = deb.file_name().unwrap().to_str().unwrap().to_owned();
    let arch = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .unwrap();
    let arch = String::from_utf8(arch.stdout).unwrap();
    assert_eq!(
        name,
        format!("hydra_{}_{}.deb", env!("CARGO_PKG_VERSION"), arch.trim())
    );

    let list = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    for path in [
        "./usr/bin/hydra",
        "./usr/bin/hydra-cat",
        "./usr/bin/hydra-zabbix-get",
        "./lib/systemd/system/hydra.service",
        "./etc/hydra/hydra.yaml",
        "./usr/share/man/man1/hydra.1.gz",
        "./usr/share/man/man1/hydra-cat.1.gz",
        "./usr/share/man/man1/hydra-zabbix-get.1.gz",
        "./usr/share/bash-completion/completions/hydra",
        "./usr/share/zsh/vendor-completions/_hydra-cat",
        "./usr/share/fish/vendor_completions.d/hydra-zabbix-get.fish",
        "./usr/share/doc/hydra/copyright",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(path)),
            "{path} missing:\n{list}"
        );
    }
    let field = |name: &str| {
        let o = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    };
    assert!(field("Depends").contains("adduser"), "{}", field("Depends"));
    let control = dir.path().join("control");
    let ok = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control)
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles"))
            .unwrap()
            .trim(),
        "/etc/hydra/hydra.yaml"
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(
        postinst.contains("adduser --system --group") && postinst.contains("adduser hydra adm")
    );

    // What is inside works: the version, the packaged config, the unit.
    let root = dir.path().join("root");
    let ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .unwrap();
    assert!(ok.success());
    let hydra = root.join("usr/bin/hydra");
    let version = Command::new(&hydra).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    let check = Command::new(&hydra)
        .arg("--check-config")
        .arg(root.join("etc/hydra/hydra.yaml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/hydra.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/hydra --config /etc/hydra/hydra.yaml"));
    assert!(unit.contains("User=hydra") && unit.contains("SupplementaryGroups=adm"));
    assert!(!unit.contains("DynamicUser"));

    let lintian = Command::new("lintian")
        .args(["--fail-on", "error,warning"])
        .arg(&deb)
        .output()
        .expect("lintian (Debian's, installed by scripts/install-test-deps)");
    assert!(
        lintian.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lintian.stdout),
        String::from_utf8_lossy(&lintian.stderr)
    );
}
