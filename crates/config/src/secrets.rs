//! TLS files, shared keys and users: everything read from outside the
//! configuration file that must not be printed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Rule};

/// TLS on a forward input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServer {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// Require client certificates signed by this CA (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// TLS to an output server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClient {
    /// CA certificates to trust (PEM); the system's roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Name expected in the server's certificate; `host` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Client certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Do not verify the server's certificate (logged as a warning).
    #[serde(default)]
    pub insecure: bool,
}

/// Where a shared key comes from: inline, a file, or an environment
/// variable. Exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SharedKey {
    /// The key itself; never printed.
    #[serde(default, skip_serializing)]
    pub shared_key: Option<String>,
    /// A file holding the key (a trailing newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_key_file: Option<PathBuf>,
    /// An environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_key_env: Option<String>,
}

impl SharedKey {
    pub(crate) fn sources(&self) -> usize {
        usize::from(self.shared_key.is_some())
            + usize::from(self.shared_key_file.is_some())
            + usize::from(self.shared_key_env.is_some())
    }

    /// The key, read from wherever it is; `None` when none is configured.
    pub fn resolve(&self) -> Result<Option<String>, Error> {
        if let Some(k) = &self.shared_key {
            return Ok(Some(k.clone()));
        }
        if let Some(path) = &self.shared_key_file {
            return read_secret(path, "shared_key_file").map(Some);
        }
        if let Some(var) = &self.shared_key_env {
            return match std::env::var(var) {
                Ok(k) if !k.is_empty() => Ok(Some(k)),
                _ => Err(Error::invalid(
                    "shared_key_env",
                    Rule::EnvUnset(var.clone()),
                )),
            };
        }
        Ok(None)
    }
}

/// A secret kept in a file (`token_file`, `shared_key_file`): its text
/// without the trailing newline. A file of blanks is an error naming `key`:
/// a secret is never silently empty, so authentication fails closed.
pub(crate) fn read_secret(path: &Path, key: &'static str) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(Error::invalid(key, Rule::EmptySecretFile(path.to_owned())));
    }
    Ok(secret.to_owned())
}

/// `security:` on a forward input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// This server's name in PONG; the machine's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_hostname: Option<String>,
    /// The shared key clients must know.
    #[serde(flatten)]
    pub key: SharedKey,
    /// When not empty, clients must also log in as one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
}

/// A user for the handshake's user authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Name.
    pub username: String,
    /// Password; never printed.
    #[serde(skip_serializing)]
    pub password: String,
}
