//! `/windows-web-agent`: the Federated sign-in page the Windows enrollment web view opens. The
//! flow and the pages are [`crate::signin`]; this reads the request and sends the page.

use super::body::{read_limited, Body};
use super::platform::Csprng;
use super::ports::EdgePorts;
use super::respond::{page, server_error};
use crate::codec::encode_base64url;
use crate::config::Config;
use crate::context::Entropy;
use crate::http::RequestUrl;
use crate::signin::{self, SigninSettings, MAX_FORM_BYTES};
use crate::tokens::RateLimit;
use worker::*;

fn nonce() -> String {
    encode_base64url(&Csprng.bytes::<16>())
}

fn settings(cfg: &Config) -> SigninSettings<'_> {
    SigninSettings {
        org_name: &cfg.org_name,
        allow_loopback_appru: cfg.allow_loopback_appru,
        limit: RateLimit { max_failures: cfg.login_max_failures, window_secs: cfg.login_window_secs.into() },
        login_token_ttl_secs: cfg.login_token_ttl_secs,
    }
}

fn send((p, log): (signin::Page, Option<String>)) -> Result<Response> {
    if let Some(line) = log {
        console_log!("{line}");
    }
    page(p)
}

/// `GET /windows-web-agent?appru=…&login_hint=…[&device_id=…]`
pub async fn show(url: &RequestUrl, cfg: &Config) -> Result<Response> {
    let query = url.query_pairs();
    send(signin::page(&query, &settings(cfg), &nonce()))
}

/// `POST /windows-web-agent`
pub async fn submit(req: web_sys::Request, env: &Env, cfg: &Config) -> Result<Response> {
    // Too large or unreadable: no fields, which the flow answers as a bad request.
    let bytes = match read_limited(&req, MAX_FORM_BYTES).await {
        Body::Read(b) => Some(b),
        Body::TooLarge | Body::Unreadable => None,
    };
    let fields =
        bytes.and_then(|b| String::from_utf8(b).ok()).and_then(|text| crate::http::form_decode(&text));
    let client = super::client_address(&req);
    let ports = EdgePorts::new(env);
    match signin::submit(&ports, &settings(cfg), fields.as_deref(), client.as_deref(), &nonce()).await {
        Ok(answer) => send(answer),
        Err(e) => server_error(&e),
    }
}
