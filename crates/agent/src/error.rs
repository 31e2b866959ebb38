//! Why hydra could not start: one error type for the whole crate.

/// Why hydra could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address could not be bound. The OS error is the source, not
    /// part of the message, so a chain of causes names it once.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: hydra_config::Listen,
        /// Why.
        source: std::io::Error,
    },
    /// A unix socket path that cannot be listened on.
    #[error("cannot listen on unix:{}: {reason}", path.display())]
    UnixPath {
        /// The socket path as configured.
        path: std::path::PathBuf,
        /// Why: it is not a socket, or a live one.
        reason: &'static str,
    },
    /// The tail input could not start.
    #[error(transparent)]
    Tail(#[from] hydra_tail::Error),
    /// The forward output's settings are unusable.
    #[error(transparent)]
    Sender(#[from] hydra_sender::Error),
    /// A secret or file the configuration names cannot be used.
    #[error(transparent)]
    Config(#[from] hydra_config::Error),
    /// A `hydra test` case names no tail input of the configuration.
    #[error("case {case:?}: no tail input has the tag {input:?}")]
    NoSuchInput {
        /// The case's name.
        case: String,
        /// The tag it named.
        input: String,
    },
    /// A filter that cannot be built.
    #[error(transparent)]
    Filter(#[from] hydra_filter::Error),
    /// A tail input's `format` settings do not make a parser.
    #[error("tail input {tag}")]
    Parser {
        /// The input's tag.
        tag: String,
        /// What is wrong.
        source: hydra_parse::Error,
    },
    /// The disk buffer cannot be opened (its directory cannot be used, or
    /// another hydra holds it).
    #[error(transparent)]
    Disk(#[from] hydra_disk::Error),
    /// A reload that would move or remove the disk buffer: refused, the
    /// running pipeline goes on with it.
    #[error("buffer.disk cannot change on a reload (from {} to {}); restart hydra to change it", show(.from.as_deref()), show(.to.as_deref()))]
    DiskChanged {
        /// The running configuration's path.
        from: Option<std::path::PathBuf>,
        /// The new configuration's path.
        to: Option<std::path::PathBuf>,
    },
    /// An input's TLS settings do not work.
    #[error("forward input {addr}: TLS")]
    Tls {
        /// The input's address.
        addr: hydra_config::Listen,
        /// What is wrong.
        source: hydra_tls::Error,
    },
}

fn show(path: Option<&std::path::Path>) -> String {
    path.map_or_else(|| "none".to_owned(), |p| p.display().to_string())
}
