//! `monitor:`: the stats endpoint, its token and the Zabbix listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secrets::read_secret;
use crate::{Error, Rule};

/// `monitor:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// Address of the stats endpoint.
    #[serde(default = "default_monitor_listen")]
    pub listen: SocketAddr,
    /// Also answer Zabbix passive checks about hydra on this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zabbix_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on every request.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// The same token, read from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// `GET /health` answers 503 once chunks have waited this long with
    /// nothing delivered.
    #[serde(default = "default_unhealthy_after", with = "humantime_serde")]
    pub unhealthy_after: Duration,
}

/// `monitor.unhealthy_after` when left out.
pub const DEFAULT_UNHEALTHY_AFTER: Duration = Duration::from_secs(60);

fn default_unhealthy_after() -> Duration {
    DEFAULT_UNHEALTHY_AFTER
}

impl Monitor {
    /// The bearer token, if one is configured. An empty or blank one is an
    /// error, never "no token": authentication fails closed.
    pub fn resolve_token(&self) -> Result<Option<String>, Error> {
        match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => Err(Error::invalid(
                "monitor",
                Rule::NotBoth("token", "token_file"),
            )),
            (Some(t), None) if t.trim().is_empty() => {
                Err(Error::invalid("monitor.token", Rule::EmptySecret))
            }
            (Some(t), None) => Ok(Some(t.clone())),
            (None, Some(p)) => read_secret(p, "monitor.token_file").map(Some),
            (None, None) => Ok(None),
        }
    }
}

fn default_monitor_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 24220))
}
