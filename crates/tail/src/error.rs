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
    /// The positions file is unreadable or of an unknown version.
    #[error("positions file {}: {reason}", path.display())]
    Positions {
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A path pattern that does not compile.
    #[error("invalid path pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
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
