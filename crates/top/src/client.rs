//! A small HTTP client for hydra's monitor.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Error;

/// What one refresh reads: `GET /` and `GET /system`.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The monitor's snapshot.
    pub snapshot: hydra_stats::Snapshot,
    /// The process figures.
    pub system: hydra_stats::System,
}

/// The monitor at one base URL.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: HttpClient<HttpConnector, Empty<Bytes>>,
}

/// `%`-encodes what is not safe in a query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for `url` (`http://host:port`); `token` is sent as a bearer
    /// token when the monitor requires one.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, Error> {
        let uri: Uri = url.parse().map_err(|source| Error::Url {
            url: url.to_owned(),
            source,
        })?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(Error::NotHttp {
                url: url.to_owned(),
            });
        }
        Ok(Client {
            base: url.trim_end_matches('/').to_owned(),
            token,
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn get(&self, path: &str) -> Result<hyper::Response<Incoming>, Error> {
        let mut req = hyper::Request::get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Empty::new()).map_err(Error::Request)?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|source| Error::Unreachable {
                url: format!("{}{path}", self.base),
                source,
            })?;
        if !resp.status().is_success() {
            return Err(Error::Status {
                url: format!("{}{path}", self.base),
                status: resp.status(),
            });
        }
        Ok(resp)
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let body = self
            .get(path)
            .await?
            .into_body()
            .collect()
            .await
            .map_err(|source| Error::Body {
                url: format!("{}{path}", self.base),
                source,
            })?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|source| Error::Json {
            url: format!("{}{path}", self.base),
            source,
        })
    }

    /// Reads the snapshot (`GET /`).
    pub async fn snapshot(&self) -> Result<hydra_stats::Snapshot, Error> {
        self.json("/").await
    }

    /// Reads the snapshot and the process figures.
    pub async fn sample(&self) -> Result<Sample, Error> {
        let snapshot = self.json("/").await?;
        let system = self.json("/system").await?;
        Ok(Sample { snapshot, system })
    }

    /// Opens `GET /tap?tag=GLOB`: a body of JSON lines that ends when the
    /// agent stops.
    pub async fn tap(&self, glob: &str) -> Result<Incoming, Error> {
        Ok(self
            .get(&format!("/tap?tag={}", encode(glob)))
            .await?
            .into_body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_queries() {
        assert!(Client::new("http://127.0.0.1:24220", None).is_ok());
        assert!(Client::new("https://127.0.0.1:24220", None).is_err());
        assert!(Client::new("127.0.0.1:24220", None).is_err());
        assert!(Client::new("not a url", None).is_err());
        assert_eq!(encode("app.* x.{a,b}"), "app.*%20x.%7Ba%2Cb%7D");
    }
}
