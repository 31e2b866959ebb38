//! Fields read from a file's path (`path_fields`), and tags made from them
//! (`tag: kube.${namespace_name}.${pod_name}`).
//!
//! The kubelet names each container's log after its pod, namespace and
//! container; `kubernetes` reads both of its layouts into the fields
//! Fluent Bit's kubernetes filter uses, so dashboards built on those keep
//! working:
//!
//! - `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`
//! - `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`

use std::fmt;
use std::str::FromStr;

use regex::bytes::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// `path_fields`: `kubernetes`, or a regex whose named groups become fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathFields {
    /// The kubelet's two layouts, as a `kubernetes` map.
    Kubernetes,
    /// Each named group, as a field of its own.
    Regex(String),
}

impl FromStr for PathFields {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "kubernetes" {
            PathFields::Kubernetes
        } else {
            PathFields::Regex(s.to_owned())
        })
    }
}

impl fmt::Display for PathFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathFields::Kubernetes => f.write_str("kubernetes"),
            PathFields::Regex(r) => f.write_str(r),
        }
    }
}

impl Serialize for PathFields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PathFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Ok(spec) = String::deserialize(d)?.parse();
        Ok(spec)
    }
}

/// The names under `kubernetes`, in the order they are written.
const KUBERNETES: [&str; 5] = [
    "namespace_name",
    "pod_name",
    "pod_uid",
    "container_name",
    "container_id",
];

/// `/var/log/containers/`: the pod's name is a DNS subdomain, the
/// container's id 64 hex digits.
const CONTAINERS: &str = r"(?:^|/)(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*)_(?<namespace_name>[^_/]+)_(?<container_name>[^/]+)-(?<container_id>[a-f0-9]{64})\.log$";

/// `/var/log/pods/`: rotated files keep the directory's names.
const PODS: &str = r"(?:^|/)(?<namespace_name>[^_/]+)_(?<pod_name>[^_/]+)_(?<pod_uid>[^_/]+)/(?<container_name>[^/]+)/[0-9]+\.log(?:\.[^/]*)?$";

/// [`PathFields`], compiled.
#[derive(Debug, Clone)]
pub struct PathRules {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Kubernetes([Regex; 2]),
    Regex(Regex),
}

/// What a path said: each name and its value, and how to write them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathValues {
    /// Name and value, in the order they are written.
    pub fields: Vec<(String, Vec<u8>)>,
    /// Under one `kubernetes` map rather than each on its own.
    pub nested: bool,
}

impl PathValues {
    /// The value of `name`, if the path had one.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Adds the fields to `extra`.
    pub fn write(&self, extra: &mut hydra_forward::ExtraFields) {
        if self.nested {
            let pairs: Vec<(&str, &[u8])> = self
                .fields
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            extra.map("kubernetes", &pairs);
        } else {
            for (n, v) in &self.fields {
                extra.str(n, v);
            }
        }
    }
}

impl PathRules {
    /// Compiles `spec`; a regex must have named groups.
    pub fn new(spec: &PathFields) -> Result<PathRules, Error> {
        let compile = |p: &str| Regex::new(p).map_err(|e| Error::Regexp(Box::new(e)));
        let kind = match spec {
            PathFields::Kubernetes => Kind::Kubernetes([compile(CONTAINERS)?, compile(PODS)?]),
            PathFields::Regex(p) => {
                let re = compile(p)?;
                if re.capture_names().flatten().next().is_none() {
                    return Err(Error::NoNamedGroups { pattern: p.clone() });
                }
                Kind::Regex(re)
            }
        };
        Ok(PathRules { kind })
    }

    /// Every name a path can give, for checking a tag's `${...}`.
    pub fn names(&self) -> Vec<String> {
        match &self.kind {
            Kind::Kubernetes(_) => KUBERNETES.iter().map(|n| (*n).to_owned()).collect(),
            Kind::Regex(re) => re.capture_names().flatten().map(str::to_owned).collect(),
        }
    }

    /// What `path` says; `None` when it does not match.
    pub fn read(&self, path: &[u8]) -> Option<PathValues> {
        let (re, nested) = match &self.kind {
            Kind::Kubernetes(layouts) => (layouts.iter().find(|r| r.is_match(path))?, true),
            Kind::Regex(re) => (re, false),
        };
        let caps = re.captures(path)?;
        let mut fields: Vec<(String, Vec<u8>)> = re
            .capture_names()
            .flatten()
            .filter_map(|n| caps.name(n).map(|m| (n.to_owned(), m.as_bytes().to_vec())))
            .collect();
        if nested {
            fields.sort_by_key(|(n, _)| KUBERNETES.iter().position(|k| k == n));
        }
        Some(PathValues { fields, nested })
    }
}

/// A tag with `${name}` parts, filled in per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Name(String),
}

impl TagTemplate {
    /// Reads `tag`; `None` when it has no `${...}`. Every name must be one
    /// of `names`.
    pub fn new(tag: &str, names: &[String]) -> Result<Option<TagTemplate>, Error> {
        if !tag.contains("${") {
            return Ok(None);
        }
        let mut parts = Vec::new();
        let mut rest = tag;
        while let Some(open) = rest.find("${") {
            let Some(len) = rest[open..].find('}') else {
                break;
            };
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let name = &rest[open + 2..open + len];
            if !names.iter().any(|n| n == name) {
                return Err(Error::TagName {
                    name: name.to_owned(),
                    names: if names.is_empty() {
                        "none, without path_fields".to_owned()
                    } else {
                        names.join(", ")
                    },
                });
            }
            parts.push(Part::Name(name.to_owned()));
            rest = &rest[open + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Some(TagTemplate { parts }))
    }

    /// The tag for a file: each name's value, `_` for a name the path did
    /// not give (or gave empty).
    pub fn render(&self, values: Option<&PathValues>) -> String {
        let mut tag = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => tag.push_str(t),
                Part::Name(n) => match values.and_then(|v| v.get(n)).filter(|v| !v.is_empty()) {
                    Some(v) => tag.push_str(&String::from_utf8_lossy(v)),
                    None => tag.push('_'),
                },
            }
        }
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn fields(v: &PathValues) -> Vec<(&str, &str)> {
        v.fields
            .iter()
            .map(|(n, v)| (n.as_str(), std::str::from_utf8(v).unwrap_or("?")))
            .collect()
    }

    #[test]
    fn both_kubelet_layouts() {
        let k = PathRules::new(&PathFields::Kubernetes).unwrap();
        let c = k
            .read(format!("/var/log/containers/web-7d9c8_prod_nginx-{ID}.log").as_bytes())
            .unwrap();
        assert!(c.nested);
        assert_eq!(
            fields(&c),
            [
                ("namespace_name", "prod"),
                ("pod_name", "web-7d9c8"),
                ("container_name", "nginx"),
                ("container_id", ID)
            ]
        );
        // A container name with dashes: the id is what ends the name.
        let dashed = k
            .read(format!("/var/log/containers/a.b_ns_side-car-{ID}.log").as_bytes())
            .unwrap();
        assert_eq!(dashed.get("container_name"), Some(&b"side-car"[..]));
        assert_eq!(dashed.get("pod_name"), Some(&b"a.b"[..]));
        let p = k
            .read(b"/var/log/pods/prod_web-7d9c8_1f2e-33/nginx/0.log")
            .unwrap();
        assert_eq!(
            fields(&p),
            [
                ("namespace_name", "prod"),
                ("pod_name", "web-7d9c8"),
                ("pod_uid", "1f2e-33"),
                ("container_name", "nginx")
            ]
        );
        assert!(
            k.read(b"/var/log/pods/prod_web_1/nginx/0.log.20260101-000000")
                .is_some(),
            "a rotated file keeps its names"
        );
        assert!(k.read(b"/var/log/syslog").is_none());
        assert!(k.read(b"/var/log/containers/no-id.log").is_none());
    }

    #[test]
    fn a_regex_gives_its_groups() {
        let r = PathRules::new(&PathFields::Regex(
            r"/srv/(?<app>[^/]+)/(?<env>[^/.]+)\.log$".into(),
        ))
        .unwrap();
        assert_eq!(r.names(), ["app", "env"]);
        let v = r.read(b"/srv/shop/prod.log").unwrap();
        assert!(!v.nested);
        assert_eq!(fields(&v), [("app", "shop"), ("env", "prod")]);
        let mut extra = hydra_forward::ExtraFields::new();
        v.write(&mut extra);
        assert_eq!(extra.len(), 2);
        assert!(matches!(
            PathRules::new(&PathFields::Regex("/srv/.*".into())),
            Err(Error::NoNamedGroups { .. })
        ));
        assert!(matches!(
            PathRules::new(&PathFields::Regex("(?<a>".into())),
            Err(Error::Regexp(_))
        ));
    }

    #[test]
    fn tag_templates_fill_names_and_mark_missing_ones() {
        let k = PathRules::new(&PathFields::Kubernetes).unwrap();
        let t = TagTemplate::new(
            "kube.${namespace_name}.${pod_name}.${container_name}",
            &k.names(),
        )
        .unwrap()
        .unwrap();
        let v = k
            .read(format!("/var/log/containers/web_prod_nginx-{ID}.log").as_bytes())
            .unwrap();
        assert_eq!(t.render(Some(&v)), "kube.prod.web.nginx");
        assert_eq!(t.render(None), "kube._._._");
        assert_eq!(TagTemplate::new("plain.tag", &k.names()).unwrap(), None);
        let e = TagTemplate::new("kube.${pod}", &k.names())
            .unwrap_err()
            .to_string();
        assert!(e.contains("${pod}") && e.contains("pod_name"), "{e}");
        assert_eq!(
            PathFields::from_str("kubernetes").unwrap(),
            PathFields::Kubernetes
        );
        assert_eq!(
            PathFields::from_str("(?<a>x)").unwrap().to_string(),
            "(?<a>x)"
        );
    }
}
