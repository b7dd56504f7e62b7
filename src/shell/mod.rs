//! The Worker shell (wasm32 only): routing, the HTTP adapters, the Durable Objects, KV,
//! WebCrypto, the clock and randomness. Every file decodes, loads, calls the core, commits and
//! encodes; the rules are in the core modules it calls.
//!
//! * routes: [`enrollment_service`] (Discovery, XCEP, WSTEP → [`crate::enroll::service`]),
//!   [`management_service`] (SyncML → the device object), [`signin_page`]
//!   (→ [`crate::signin`]), [`admin_api`] (with [`admin_auth`]: who may call what, and the
//!   audit log; and [`profiles_api`]), [`console`] (the admin console's static files)
//! * objects: [`ca_object`] (the CA key), [`device_object`], [`token_object`], [`admin_object`],
//!   [`profile_catalog`] (profiles, groups, membership); [`rpc`] encodes
//!   their typed calls, [`storage`] commits their writes
//! * platform: [`ports`] (the core's traits), [`kv`], [`index`] (the fleet index in D1), [`webcrypto`] (PBKDF2 and the PKI's
//!   crypto provider), [`platform`] (clock, randomness), [`body`] (bounded reads), [`respond`]
//!   (responses and error mapping), [`metrics`] (per-request counts for the benchmark)

pub mod admin_api;
pub mod admin_auth;
pub mod admin_object;
pub mod body;
pub mod ca_object;
pub mod console;
pub mod device_object;
pub mod enrollment_service;
pub mod index;
pub mod kv;
pub mod management_service;
pub mod metrics;
pub mod platform;
pub mod ports;
pub mod profile_catalog;
pub mod profiles_api;
pub mod respond;
pub mod rpc;
pub mod signin_page;
pub mod storage;
pub mod token_object;
pub mod webcrypto;

use crate::config::Config;
use crate::http::RequestUrl;
use respond::{fixed, json_error};
use worker::*;

thread_local! {
    /// The configuration, read once per isolate: vars and secrets are fixed for the deployment
    /// version an isolate runs, and reading them costs two calls into JS per setting.
    static CONFIG: std::cell::OnceCell<Config> = const { std::cell::OnceCell::new() };
}

/// Reads the configuration from the Worker's vars and secrets (once per isolate).
pub fn config(env: &Env) -> std::result::Result<Config, crate::config::ConfigError> {
    if let Some(c) = CONFIG.with(|c| c.get().cloned()) {
        return Ok(c);
    }
    let cfg = Config::from_lookup(&|name| {
        env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
    })?;
    CONFIG.with(|c| {
        let _ = c.set(cfg.clone());
    });
    Ok(cfg)
}

/// The client's address (`CF-Connecting-IP`), when it is a plausible one: the key of its
/// sign-in failure window and what the audit log records.
pub fn client_address(req: &web_sys::Request) -> Option<String> {
    header(req, "CF-Connecting-IP").filter(|a| !a.is_empty() && a.len() <= 64)
}

/// A request header's value, if present.
pub fn header(req: &web_sys::Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The request's URL as the runtime serialized it, in parts (see [`RequestUrl`]).
pub fn request_url(req: &web_sys::Request) -> Result<RequestUrl> {
    RequestUrl::parse(&req.url()).ok_or_else(|| Error::RustError("the request URL has no scheme".into()))
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The request as the runtime hands it: `worker::Request` would read `request.cf` for every
/// request (the runtime builds that object on each read, a tenth of the cheapest request's CPU
/// in the benchmark's profile), and only the admin routes are handed one.
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<Response> {
    let report = metrics::reporting(&env);
    let before = metrics::snapshot();
    let mut resp = route(req, &env).await?;
    if report {
        let counts = serde_json::to_string(&metrics::snapshot().since(before)).unwrap_or_default();
        // Headers of a response made here are mutable; a failure only loses the report.
        let _ = resp.headers_mut().set(metrics::HEADER, &counts);
        let total = serde_json::to_string(&metrics::snapshot()).unwrap_or_default();
        let _ = resp.headers_mut().set(metrics::TOTAL_HEADER, &total);
    }
    Ok(resp)
}

async fn route(req: web_sys::Request, env: &Env) -> Result<Response> {
    let cfg = match config(env) {
        Ok(c) => c,
        Err(e) => {
            console_error!("{e}");
            return json_error(500, "server misconfigured; see the worker log");
        }
    };
    // Split once here; the handlers that need its origin, path or query are handed it.
    let url = request_url(&req)?;
    // Windows and WSO2 spell these paths in different cases.
    let path = url.path.to_ascii_lowercase();
    let method = Method::from(req.method());
    match (method, path.trim_end_matches('/')) {
        (Method::Get, "") => fixed(200, "text/plain; charset=utf-8", "edgemdm\n"),
        (Method::Get, "/enrollmentserver/discovery.svc") => fixed(200, "text/html", Vec::new()),
        (
            Method::Post,
            "/enrollmentserver/discovery.svc"
            | "/enrollmentserver/policyenrollmentwebservice.svc"
            | "/enrollmentserver/deviceenrollmentwebservice.svc"
            | "/enrollmentserver/win10deviceenrollmentwebservice.svc",
        ) => Box::pin(enrollment_service::handle(req, &url, env, &cfg)).await,
        (Method::Post, "/managementserver/mdm.svc") => {
            Box::pin(management_service::handle(req, &url, env, &cfg)).await
        }
        // Each route is its own boxed future, so this one does not inline them all.
        (Method::Get, "/windows-web-agent") => Box::pin(signin_page::show(&url, &cfg)).await,
        (Method::Post, "/windows-web-agent") => Box::pin(signin_page::submit(req, env, &cfg)).await,
        (Method::Get, "/api/v1/ca") => Box::pin(admin_api::ca_certificate(env)).await,
        (Method::Get, "/api/v1/openapi.json") => Box::pin(console::serve(&url, env)).await,
        (Method::Get, p) if p == "/admin" || p.starts_with("/admin/") => {
            Box::pin(console::serve(&url, env)).await
        }
        (_, p) if p.starts_with("/api/v1/") => {
            Box::pin(admin_api::handle(Request::from(req), &url, env, &cfg)).await
        }
        _ => json_error(404, "not found"),
    }
}
