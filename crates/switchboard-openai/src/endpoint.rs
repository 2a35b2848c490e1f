//! A configuration made ready to send: the HTTP client, the URL and the headers.

use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::config::{AuthStyle, OpenAiConfig};
use crate::http;

/// Everything needed to send a request to one path of the configured server.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub client: reqwest::Client,
    pub url: Url,
    pub headers: HeaderMap,
}

impl Endpoint {
    /// Prepares `<base_url>/<path>` (with the configured query). Errors say what is wrong
    /// without quoting header values.
    pub fn new(config: &OpenAiConfig, path: &str) -> Result<Endpoint, String> {
        let base = config.base_url.trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/{path}"))
            .map_err(|e| format!("invalid base URL {base:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("invalid base URL {base:?}: not http or https"));
        }
        if !config.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &config.query {
                pairs.append_pair(name, value);
            }
        }

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let secret = |name: &str, value: &str| {
            HeaderValue::from_str(value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| format!("the {name} value is not a valid header value"))
        };
        if let Some(key) = &config.api_key {
            match config.auth_style {
                AuthStyle::Bearer => {
                    headers.insert(AUTHORIZATION, secret("API key", &format!("Bearer {key}"))?);
                }
                AuthStyle::ApiKeyHeader => {
                    headers.insert(HeaderName::from_static("api-key"), secret("API key", key)?);
                }
            }
        }
        if let Some(org) = &config.organization {
            headers.insert(
                HeaderName::from_static("openai-organization"),
                secret("organization", org)?,
            );
        }
        if let Some(project) = &config.project {
            headers.insert(
                HeaderName::from_static("openai-project"),
                secret("project", project)?,
            );
        }
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            headers.append(header, secret(name, value)?);
        }
        let client = http::build_client(config.connect_timeout)?;
        Ok(Endpoint {
            client,
            url,
            headers,
        })
    }

    /// A POST of `body` to the endpoint.
    pub fn post(&self, body: Vec<u8>) -> reqwest::RequestBuilder {
        self.client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
    }
}
