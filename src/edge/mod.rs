//! The Worker's HTTP shell: routing and the adapters between HTTP and the pure core. One file
//! per endpoint family.

pub mod admin;
pub mod enroll;
pub mod login;
pub mod mgmt;
pub mod password;
pub mod tokens;

use crate::config::Config;
use worker::*;

/// Reads the configuration from the Worker's vars and secrets.
pub fn config(env: &Env) -> std::result::Result<Config, crate::config::ConfigError> {
    Config::from_lookup(&|name| {
        env.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| env.var(name).map(|v| v.to_string()))
            .ok()
    })
}

/// `scheme://host[:port]` of the request.
pub fn origin(req: &Request) -> Result<String> {
    let url = req.url()?;
    Ok(url.origin().ascii_serialization())
}

/// A response with a fixed body: the runtime sends `Content-Length`, never chunked encoding
/// (the Windows enrollment client needs that).
pub fn fixed(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", content_type)?;
    headers.set("Cache-Control", "no-store")?;
    let body = body.into();
    headers.set("Content-Length", &body.len().to_string())?;
    // A null body for an empty one (an empty buffer is sent chunked), and no automatic
    // compression: it would turn the body into a chunked stream.
    let resp = if body.is_empty() { Response::empty()? } else { Response::from_bytes(body)? };
    Ok(resp.with_status(status).with_headers(headers).with_encode_body(EncodeBody::Manual))
}

pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Result<Response> {
    fixed(status, "application/json; charset=utf-8", serde_json::to_vec(value)?)
}

pub fn json_error(status: u16, message: &str) -> Result<Response> {
    json(status, &serde_json::json!({ "error": message }))
}

/// A fresh id for logs and fault `TraceId`s.
pub fn trace_id() -> String {
    crate::enrollment::hex(&crate::objects::random_bytes::<8>())
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let cfg = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            console_error!("{e}");
            return json_error(500, "server misconfigured; see the worker log");
        }
    };
    // Windows and WSO2 spell these paths in different cases.
    let path = req.path().to_ascii_lowercase();
    let method = req.method();
    match (method, path.trim_end_matches('/')) {
        (Method::Get, "") => fixed(200, "text/plain; charset=utf-8", "edgemdm\n"),
        (Method::Get, "/enrollmentserver/discovery.svc") => fixed(200, "text/html", Vec::new()),
        (
            Method::Post,
            "/enrollmentserver/discovery.svc"
            | "/enrollmentserver/policyenrollmentwebservice.svc"
            | "/enrollmentserver/deviceenrollmentwebservice.svc"
            | "/enrollmentserver/win10deviceenrollmentwebservice.svc",
        ) => enroll::soap(req, &env, &cfg).await,
        (Method::Post, "/managementserver/mdm.svc") => mgmt::handle(req, &env, &cfg).await,
        (Method::Get, "/windows-web-agent") => login::page(req, &cfg).await,
        (Method::Post, "/windows-web-agent") => login::submit(req, &env, &cfg).await,
        (Method::Get, "/api/v1/ca") => admin::ca_certificate(&env).await,
        (_, p) if p.starts_with("/api/v1/") => admin::handle(req, &env, &cfg).await,
        _ => json_error(404, "not found"),
    }
}
