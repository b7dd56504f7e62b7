//! Discovery, XCEP and WSTEP over HTTP: reads the body (bounded), hands it to
//! [`crate::enroll::service`] and sends its answer.

use super::body::{read_limited, Body};
use super::platform::{now_ms, Csprng};
use super::ports::EdgePorts;
use super::respond::fixed;
use crate::config::Config;
use crate::enroll::service::{self, SoapRequest, MAX_SOAP_BYTES, SOAP_CONTENT_TYPE};
use crate::http::RequestUrl;
use crate::proto::provdoc::ClientGeneration;
use worker::*;

pub async fn handle(req: web_sys::Request, url: &RequestUrl, env: &Env, cfg: &Config) -> Result<Response> {
    let client_cert = super::management_service::verified_client_cert(&req);
    let generation = ClientGeneration::from_service_path(&url.path);
    let base_url = cfg.base_url(&url.origin);
    let client = super::client_address(&req);
    // Too large: the MessageFormat fault of `EnrollError::TooLarge`. Unreadable (the client
    // went away mid-body): answered as the empty body it amounts to, a MessageFormat fault too.
    let body = match read_limited(&req, MAX_SOAP_BYTES).await {
        Body::Read(b) => Some(b),
        Body::TooLarge => None,
        Body::Unreadable => Some(Vec::new()),
    };
    let request = SoapRequest {
        body: body.as_deref(),
        base_url: &base_url,
        client_cert: client_cert.as_deref(),
        client: client.as_deref(),
        generation,
        now_ms: now_ms(),
    };
    let ports = EdgePorts::new(env);
    let answer = Box::pin(service::handle(&ports, cfg, request, &mut Csprng)).await;
    if let Some(line) = answer.log {
        console_log!("{line}");
    }
    fixed(200, SOAP_CONTENT_TYPE, answer.body)
}
