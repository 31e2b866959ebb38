//! Turning path patterns into paths.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::Error;

/// Paths and globs of one source, with its exclusions.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    literals: Vec<PathBuf>,
    globs: Vec<PatternGlob>,
    exclude: GlobSet,
    exclude_names: GlobSet,
}

#[derive(Debug, Clone)]
struct PatternGlob {
    /// The longest leading directory with no glob syntax: where to walk.
    base: PathBuf,
    matcher: GlobMatcher,
    /// Components below `base` a match can have; `None` with `**`.
    depth: Option<usize>,
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

fn compile(pattern: &str) -> Result<Glob, Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| Error::Pattern {
            pattern: pattern.to_owned(),
            source,
        })
}

impl Matcher {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Self, Error> {
        let mut literals = Vec::new();
        let mut globs = Vec::new();
        for pattern in include {
            if !is_glob(pattern) {
                literals.push(PathBuf::from(pattern));
                continue;
            }
            let path = Path::new(pattern);
            let mut base = PathBuf::new();
            let mut rest = 0;
            let components: Vec<_> = path.components().collect();
            for (i, c) in components.iter().enumerate() {
                if matches!(c, Component::Normal(s) if is_glob(&s.to_string_lossy())) {
                    rest = components.len() - i;
                    break;
                }
                base.push(c);
            }
            if base.as_os_str().is_empty() {
                base.push(".");
            }
            globs.push(PatternGlob {
                base,
                matcher: compile(pattern)?.compile_matcher(),
                depth: (!pattern.contains("**")).then_some(rest),
            });
        }
        let (mut full, mut names) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for pattern in exclude {
            // A pattern without a slash excludes by file name anywhere.
            if pattern.contains('/') {
                full.add(compile(pattern)?);
            } else {
                names.add(compile(pattern)?);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|source| Error::Pattern {
                pattern: exclude.join(", "),
                source,
            })
        };
        Ok(Matcher {
            literals,
            globs,
            exclude: build(full)?,
            exclude_names: build(names)?,
        })
    }

    pub(crate) fn excluded(&self, path: &Path) -> bool {
        self.exclude.is_match(path)
            || path
                .file_name()
                .is_some_and(|n| self.exclude_names.is_match(Path::new(n)))
    }

    /// Whether `path` is one this source follows.
    pub(crate) fn matches(&self, path: &Path) -> bool {
        (self.literals.iter().any(|l| l == path)
            || self.globs.iter().any(|g| g.matcher.is_match(path)))
            && !self.excluded(path)
    }

    /// Every path this source follows now: literal paths whether or not they
    /// exist (they are waited for), and glob matches that are files.
    pub(crate) fn discover(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .literals
            .iter()
            .filter(|p| !self.excluded(p))
            .cloned()
            .collect();
        for g in &self.globs {
            let mut walk = walkdir::WalkDir::new(&g.base)
                .follow_links(true)
                .min_depth(1);
            if let Some(d) = g.depth {
                walk = walk.max_depth(d);
            }
            for entry in walk.into_iter().filter_map(Result::ok) {
                let path = entry.path();
                if entry.file_type().is_file() && g.matcher.is_match(path) && !self.excluded(path) {
                    out.push(path.to_owned());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Directories whose changes can reveal new or rotated files, and
    /// whether each needs watching recursively.
    pub(crate) fn watch_dirs(&self) -> Vec<(PathBuf, bool)> {
        let parent = |p: &Path| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut dirs: Vec<_> = self.literals.iter().map(|p| (parent(p), false)).collect();
        dirs.extend(
            self.globs
                .iter()
                .map(|g| (g.base.clone(), g.depth != Some(1))),
        );
        dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn globs_braces_double_star_and_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.log",
            "b.log",
            "c.txt",
            "sub/d.log",
            "sub/deep/e.log",
            "x.log.gz",
            "skip.log",
        ] {
            let p = d.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
        fs::create_dir(d.join("dir.log")).unwrap();
        let s = |p: &str| format!("{}/{p}", d.display());
        let names = |m: Matcher| -> Vec<String> {
            m.discover()
                .iter()
                .map(|p| p.strip_prefix(d).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names(Matcher::new(&[s("*.log")], &[]).unwrap()),
            ["a.log", "b.log", "skip.log"]
        );
        assert_eq!(
            names(Matcher::new(&[s("{a,c}.*")], &[]).unwrap()),
            ["a.log", "c.txt"]
        );
        assert_eq!(
            names(Matcher::new(&[s("**/*.log")], &["skip.log".into()]).unwrap()),
            ["a.log", "b.log", "sub/d.log", "sub/deep/e.log"]
        );
        assert_eq!(
            names(Matcher::new(&[s("*/*.log")], &[s("sub/deep/*")]).unwrap()),
            ["sub/d.log"]
        );
        // A literal path is followed before it exists.
        let m = Matcher::new(&[s("later.log")], &[]).unwrap();
        assert_eq!(names(m.clone()), ["later.log"]);
        assert!(m.matches(&d.join("later.log")));
        assert!(Matcher::new(&[s("[")], &[]).is_err());
    }
}
