//! The cases file of `hydra test`: lines given to a tail input of a
//! configuration, and the events they must become.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One case.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Printed with the result.
    pub name: String,
    /// The `tag` of the tail input the lines go through.
    pub input: String,
    /// The lines, as written to the file (without newlines).
    pub lines: Vec<String>,
    /// The file's path, for the input's `path_fields` and a tag made from
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The events, in order.
    pub expect: Vec<Event>,
}

/// An event as `hydra test` compares it: its tag and its record.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// With the configuration's `tag_prefix`.
    pub tag: String,
    /// The record, as JSON.
    pub record: serde_json::Value,
}

/// Reads a cases file: a YAML list of [`Case`]s.
pub fn load_cases(path: &Path) -> Result<Vec<Case>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    cases_from_yaml(&text).map_err(|e| Error::In {
        path: path.to_owned(),
        error: Box::new(e),
    })
}

/// Parses the text of a cases file.
pub fn cases_from_yaml(text: &str) -> Result<Vec<Case>, Error> {
    serde_yaml::from_str(text).map_err(|error| Error::Yaml { line: None, error })
}
