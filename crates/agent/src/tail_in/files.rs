//! What each file's lines carry besides themselves: the tag (an input's
//! own, or its template filled from the file's path) and the extra fields
//! (`path_key`, `host_key`, `path_fields`), worked out once per file and
//! kept while the file is read.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hydra_forward::ExtraFields;
use hydra_parse::path::{PathRules, TagTemplate};

use super::ParseCounters;
use crate::mapping::join_tag;

/// What a tail input's lines become: their tag, field and extra fields.
pub(super) struct Meta {
    /// The input's tag, with `tag_prefix`; a template's text as written.
    pub(super) tag: String,
    pub(super) prefix: Option<String>,
    pub(super) field: String,
    pub(super) path_key: Option<String>,
    pub(super) host_key: Option<String>,
    pub(super) path_rules: Option<PathRules>,
    pub(super) template: Option<TagTemplate>,
}

/// One file's tag and extra fields.
pub(super) struct FileMeta {
    pub(super) tag: String,
    pub(super) extra: ExtraFields,
    /// A filter matches the tag: lines become records for the filters.
    pub(super) filtered: bool,
}

/// Files' [`FileMeta`], by input and path. Emptied when it holds this
/// many, so files long gone do not pile up; working one out again costs a
/// regex match.
const MOST_FILES: usize = 4096;

#[derive(Default)]
pub(super) struct Files {
    /// By input, then path: a lookup borrows the path, it copies nothing.
    known: Vec<HashMap<PathBuf, Arc<FileMeta>>>,
}

impl Files {
    /// The tag and extra fields of `source`'s file at `path`.
    pub(super) fn meta(
        &mut self,
        source: usize,
        path: &Path,
        meta: &Meta,
        host: &str,
        filters: &hydra_filter::Chain,
        counters: &ParseCounters,
    ) -> Arc<FileMeta> {
        if self.known.len() <= source {
            self.known.resize_with(source + 1, HashMap::new);
        }
        if let Some(m) = self.known[source].get(path) {
            return m.clone();
        }
        if self.known.iter().map(HashMap::len).sum::<usize>() >= MOST_FILES {
            self.known.iter_mut().for_each(HashMap::clear);
        }
        let bytes = path.as_os_str().as_bytes();
        let mut extra = ExtraFields::new();
        if let Some(k) = &meta.path_key {
            extra.str(k, bytes);
        }
        if let Some(k) = &meta.host_key {
            extra.str(k, host.as_bytes());
        }
        let values = meta.path_rules.as_ref().map(|r| r.read(bytes));
        match &values {
            Some(Some(v)) => v.write(&mut extra),
            Some(None) => {
                // Read all the same, without the fields; counted so an
                // operator sees a layout the rules do not know.
                if let Some((_, n)) = counters.path_unmatched.get(source).and_then(Option::as_ref) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {}
        }
        let tag = match &meta.template {
            Some(t) => join_tag(
                meta.prefix.as_deref(),
                &t.render(values.as_ref().and_then(Option::as_ref)),
            ),
            None => meta.tag.clone(),
        };
        let file = Arc::new(FileMeta {
            filtered: filters.applies(&tag),
            tag,
            extra,
        });
        self.known[source].insert(path.to_path_buf(), file.clone());
        file
    }
}
