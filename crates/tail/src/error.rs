use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while tailing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The positions file is not JSON of the expected shape.
    #[error("positions file {}: {source}", path.display())]
    Positions {
        /// The positions file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// The positions file was written by a build with another format.
    #[error("positions file {}: version {version} is not supported (this build reads version {supported})", path.display())]
    PositionsVersion {
        /// The positions file.
        path: PathBuf,
        /// The version it has.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A path pattern that does not compile.
    #[error("invalid path pattern {pattern:?}: {}", source.kind())]
    Pattern {
        /// The glob as configured.
        pattern: String,
        /// Why.
        source: globset::Error,
    },
    /// The tailer thread could not be started.
    #[error("cannot start the tailer thread: {0}")]
    Thread(std::io::Error),
}

impl Error {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}
