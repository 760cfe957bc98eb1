//! The connection to Elasticsearch: the `elasticsearch` crate's transport (node pool,
//! auth, custom CA, timeouts), with bulk bodies sent as pre-built bytes and gzipped here at
//! a chosen level (the crate's own compression is fixed at level 6, several times slower).

use std::io::Write;
use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, Transport, TransportBuilder,
};
use elasticsearch::http::{Method, Url};

use super::ElasticsearchConfig;

/// What came back: the status and the body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The response body.
    pub body: bytes::Bytes,
}

/// A request that got no HTTP answer: refused, reset, timed out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectionError(String);

/// Talks to the cluster.
pub struct EsClient {
    transport: Transport,
    gzip_level: u32,
}

impl EsClient {
    /// Builds the transport; nothing is sent yet.
    pub fn new(config: &ElasticsearchConfig) -> anyhow::Result<Self> {
        let mut url_credentials = None;
        let urls = config
            .urls
            .iter()
            .map(|u| {
                let mut url =
                    Url::parse(u).map_err(|e| anyhow::anyhow!("sink.urls: {u:?}: {e}"))?;
                // `https://user:pass@host:9200`: taken as basic auth, kept out of logs.
                if !url.username().is_empty() {
                    url_credentials = Some(Credentials::Basic(
                        url.username().to_owned(),
                        url.password().unwrap_or_default().to_owned(),
                    ));
                    let _ = url.set_username("");
                    let _ = url.set_password(None);
                }
                Ok(url)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut builder = match urls.as_slice() {
            [one] => TransportBuilder::new(SingleNodeConnectionPool::new(one.clone())),
            _ => TransportBuilder::new(MultiNodeConnectionPool::round_robin(urls, None)),
        }
        .disable_proxy()
        .timeout(Duration::from_millis(config.request_timeout_ms));
        if let Some(credentials) = url_credentials.filter(|_| config.auth.is_none()) {
            builder = builder.auth(credentials);
        }
        if let Some(auth) = &config.auth {
            builder = builder.auth(match (&auth.username, &auth.password, &auth.api_key) {
                (Some(user), Some(password), _) => {
                    Credentials::Basic(user.clone(), password.clone())
                }
                (_, _, Some(key)) => Credentials::EncodedApiKey(key.clone()),
                _ => {
                    anyhow::bail!("sink.auth: give either `username` and `password`, or `api_key`")
                }
            });
        }
        if let Some(ca) = &config.tls_ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| anyhow::anyhow!("sink.tls_ca_file: {}: {e}", ca.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("sink.tls_ca_file: {}: {e}", ca.display()))?;
            builder = builder.cert_validation(CertificateValidation::Full(cert));
        }
        Ok(EsClient {
            transport: builder.build()?,
            gzip_level: config.gzip_level,
        })
    }

    /// `POST /_bulk` with an NDJSON body.
    pub async fn bulk(&self, body: &[u8]) -> Result<Reply, ConnectionError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        let body = if self.gzip_level > 0 {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gzip(body, self.gzip_level)
        } else {
            body.to_vec()
        };
        self.send(Method::Post, "/_bulk", headers, Some(body)).await
    }

    /// Any other request, with an optional JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ConnectionError> {
        self.send(method, path, HeaderMap::new(), body).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ConnectionError> {
        let response = self
            .transport
            .send(method, path, headers, None::<&()>, body, None)
            .await
            .map_err(|e| ConnectionError(describe(&e)))?;
        let status = response.status_code().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| ConnectionError(format!("reading the response: {e}")))?;
        Ok(Reply { status, body })
    }
}

fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    // Log lines compress ~5-8x at level 1; a quarter avoids regrowth in practice.
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// The error and its causes on one line ("error sending request: connection refused").
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"{\"create\":{}}\n{\"a\":1}\n".repeat(100);
        let packed = gzip(&body, 1);
        assert!(packed.len() < body.len() / 5);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }
}
