//! Fluentd tag patterns, as `<match>` sections, `hydra tap` and filters
//! take them.

/// A Fluentd tag pattern: parts split on `.`, `*` matches one part, `**`
/// zero or more; `{a,b}` alternatives; several patterns separated by
/// spaces match if any does.
#[derive(Debug, Clone)]
pub struct TagPattern(Vec<Vec<String>>);

impl TagPattern {
    /// The pattern; empty matches every tag.
    pub fn new(glob: &str) -> TagPattern {
        TagPattern(
            glob.split_whitespace()
                .flat_map(expand_braces)
                .map(|p| p.split('.').map(str::to_owned).collect())
                .collect(),
        )
    }

    /// Whether `tag` matches.
    pub fn matches(&self, tag: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let parts: Vec<&str> = tag.split('.').collect();
        self.0.iter().any(|p| match_parts(p, &parts))
    }
}

fn expand_braces(p: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (p.find('{'), p.find('}')) else {
        return vec![p.to_owned()];
    };
    if close < open {
        return vec![p.to_owned()];
    }
    p[open + 1..close]
        .split(',')
        .flat_map(|alt| expand_braces(&format!("{}{alt}{}", &p[..open], &p[close + 1..])))
        .collect()
}

fn match_parts(pattern: &[String], tag: &[&str]) -> bool {
    match pattern.split_first() {
        None => tag.is_empty(),
        Some((p, rest)) if p == "**" => (0..=tag.len()).any(|skip| match_parts(rest, &tag[skip..])),
        Some((p, rest)) => match tag.split_first() {
            Some((t, tag_rest)) => part_matches(p, t) && match_parts(rest, tag_rest),
            None => false,
        },
    }
}

/// One part: `*` within a part matches any run of characters.
fn part_matches(p: &str, t: &str) -> bool {
    match p.split_once('*') {
        None => p == t,
        Some((head, tail)) => {
            t.starts_with(head)
                && (0..=t.len() - head.len()).any(|i| {
                    t.is_char_boundary(head.len() + i) && part_matches(tail, &t[head.len() + i..])
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluentd_tag_patterns() {
        let m = |p: &str, t: &str| TagPattern::new(p).matches(t);
        assert!(m("", "anything.at.all"));
        assert!(m("app.*", "app.web"));
        assert!(!m("app.*", "app.web.x"));
        assert!(!m("app.*", "app"));
        assert!(m("app.**", "app"));
        assert!(m("app.**", "app.web.x"));
        assert!(m("**", "a.b"));
        assert!(m("a.{b,c}", "a.c"));
        assert!(!m("a.{b,c}", "a.d"));
        assert!(m("x.y app.*", "app.z"));
        assert!(m("app.web*", "app.web1"));
        assert!(!m("app.web*", "app.api"));
        assert!(m("*.access", "nginx.access"));
    }
}
