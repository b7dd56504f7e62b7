//! `/windows-web-agent`: the Federated sign-in page the Windows enrollment web view opens
//! (`?appru=<ms-app://…>&login_hint=<email>`), and its form post. On success the answer is the
//! end page posting `wresult` (a login token, or the admin enrollment token the user typed as
//! the password) to `appru`. Pages and rules are in [`crate::login`]; tokens and rate limits in
//! the token authority object ([`super::tokens`]).

use super::{fixed, tokens};
use crate::config::Config;
use crate::enrollment::valid_device_id;
use crate::login::{self, Appru, LoginForm, Page};
use crate::objects::{kv, random_bytes, tokens::Stage};
use crate::tokens::{looks_like_token, RateLimit};
use crate::users;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use worker::*;

const MAX_FORM_BYTES: usize = 16 * 1024;
/// Client address when the request has no `CF-Connecting-IP` (local development).
const LOCAL_CLIENT: &str = "local";

fn nonce() -> String {
    B64URL.encode(random_bytes::<16>())
}

fn respond(page: Page) -> Result<Response> {
    let mut resp = fixed(page.status, "text/html; charset=utf-8", page.html)?;
    let headers = resp.headers_mut();
    headers.set("Content-Security-Policy", &page.csp)?;
    for (name, value) in login::SECURITY_HEADERS {
        headers.set(name, value)?;
    }
    Ok(resp)
}

fn bad_appru(cfg: &Config, e: &login::AppruError) -> Result<Response> {
    console_log!("sign-in page: {e}");
    respond(login::message_page(&cfg.org_name, login::MSG_BAD_APPRU, &nonce(), 400))
}

/// `GET /windows-web-agent?appru=…&login_hint=…[&device_id=…]`
pub async fn page(req: Request, cfg: &Config) -> Result<Response> {
    let url = req.url()?;
    let mut appru = None;
    let mut hint = None;
    let mut device = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "appru" if appru.is_none() => appru = Some(v.into_owned()),
            "login_hint" if hint.is_none() => hint = Some(v.into_owned()),
            "device_id" if device.is_none() => device = Some(v.into_owned()),
            _ => {}
        }
    }
    let appru = match login::validate_appru(appru.as_deref(), cfg.allow_loopback_appru) {
        Ok(a) => a,
        Err(e) => return bad_appru(cfg, &e),
    };
    let email = login::clean_hint(hint.as_deref());
    let form = LoginForm {
        org_name: &cfg.org_name,
        appru: &appru.url,
        email: &email,
        device_id: device.as_deref().filter(|d| valid_device_id(d)),
        error: None,
    };
    respond(login::login_page(&form, &nonce(), 200))
}

fn form_again(cfg: &Config, appru: &Appru, email: &str, device: Option<&str>, error: &str, status: u16) -> Result<Response> {
    let form = LoginForm { org_name: &cfg.org_name, appru: &appru.url, email, device_id: device, error: Some(error) };
    respond(login::login_page(&form, &nonce(), status))
}

/// `POST /windows-web-agent` (form: `appru`, `email`, `password`, optional `device_id`).
pub async fn submit(mut req: Request, env: &Env, cfg: &Config) -> Result<Response> {
    let declared = req.headers().get("Content-Length")?.and_then(|l| l.parse::<usize>().ok());
    let body = if declared.is_some_and(|l| l > MAX_FORM_BYTES) { Vec::new() } else { req.bytes().await? };
    let fields = (body.len() <= MAX_FORM_BYTES)
        .then(|| String::from_utf8(body).ok())
        .flatten()
        .and_then(|text| crate::http::form_decode(&text));
    let field = |name: &str| fields.as_ref().and_then(|f| f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    let appru = match login::validate_appru(field("appru").as_deref(), cfg.allow_loopback_appru) {
        Ok(a) => a,
        Err(e) => return bad_appru(cfg, &e),
    };
    let typed_email = login::clean_hint(field("email").as_deref());
    let email = users::normalize_email(&typed_email);
    let password = field("password").unwrap_or_default();
    let device = field("device_id").filter(|d| valid_device_id(d));
    let device = device.as_deref();
    if email.is_empty() || password.is_empty() {
        return form_again(cfg, &appru, &typed_email, device, login::MSG_MISSING_FIELDS, 200);
    }

    let client = req.headers().get("CF-Connecting-IP")?.filter(|a| !a.is_empty() && a.len() <= 64);
    let keys = vec![format!("email:{email}"), format!("ip:{}", client.as_deref().unwrap_or(LOCAL_CLIENT))];
    let limit = RateLimit { max_failures: cfg.login_max_failures, window_secs: cfg.login_window_secs.into() };
    if !tokens::admit_attempt(env, &keys, limit).await? {
        return form_again(cfg, &appru, &typed_email, device, login::MSG_RATE_LIMITED, 429);
    }

    // An enrollment token typed as the password: handed to Windows as it is (its uses are spent
    // at enrollment), when it is valid and this user's.
    if looks_like_token(&password) {
        if let Ok(_sub) = tokens::use_token(env, &password, Stage::Check, device, Some(&email)).await? {
            tokens::release_attempt(env, &keys).await?;
            return respond(login::end_page(&cfg.org_name, &appru, &password, &nonce()));
        }
    }

    let store = kv::store(env)?;
    let user = if users::valid_email(&email) { kv::get_user(&store, &email).await? } else { None };
    // Hash even for unknown users, so timing does not tell which emails exist.
    let stored = user.as_ref().map(|u| u.password_hash.as_str()).unwrap_or(users::DUMMY_HASH);
    let ok = super::password::verify(stored, &password).await? && user.is_some();
    if !ok {
        return form_again(cfg, &appru, &typed_email, device, login::MSG_BAD_CREDENTIALS, 200);
    }
    let issued = tokens::issue_login(env, &email, device, cfg.login_token_ttl_secs, &keys).await?;
    respond(login::end_page(&cfg.org_name, &appru, &issued.token, &nonce()))
}
