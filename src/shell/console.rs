//! The admin console (`/admin`) and the OpenAPI document (`/api/v1/openapi.json`): static files
//! from the Workers assets binding (built into `build/console` by `scripts/build.sh`), served
//! by the Worker so each carries a strict Content-Security-Policy and frame protection. The
//! console loads nothing from anywhere else.

use super::respond::json_error;
use crate::http::RequestUrl;
use worker::*;

pub const BINDING: &str = "ASSETS";

/// The console's policy: its own script and stylesheet, calls to its own API, nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The files there are, and their types. Anything else under `/admin/` is a 404.
fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/admin/" => ("/admin/index.html", "text/html; charset=utf-8"),
        "/admin/app.js" => ("/admin/app.js", "text/javascript; charset=utf-8"),
        "/admin/app.css" => ("/admin/app.css", "text/css; charset=utf-8"),
        "/api/v1/openapi.json" => ("/openapi.json", "application/json; charset=utf-8"),
        _ => return None,
    })
}

/// `GET /admin…` and `GET /api/v1/openapi.json`.
pub async fn serve(url: &RequestUrl, env: &Env) -> Result<Response> {
    let path = url.path.as_str();
    if path == "/admin" {
        let mut resp = Response::empty()?.with_status(308);
        resp.headers_mut().set("Location", "/admin/")?;
        return Ok(resp);
    }
    let Some((file, content_type)) = asset(path) else {
        return json_error(404, "not found");
    };
    let found = env.assets(BINDING)?.fetch(format!("{}{file}", url.origin), None).await?;
    if found.status_code() != 200 {
        console_error!("console asset {file}: {}", found.status_code());
        return json_error(404, "not found");
    }
    let body = super::respond::bytes_of(found).await?;
    let headers = Headers::new();
    headers.set("Content-Type", content_type)?;
    // The page always revalidates; a deployment changes its script and stylesheet together.
    headers.set("Cache-Control", "no-cache")?;
    headers.set("Content-Security-Policy", CSP)?;
    headers.set("X-Frame-Options", "DENY")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("Referrer-Policy", "no-referrer")?;
    headers.set("Cross-Origin-Opener-Policy", "same-origin")?;
    Ok(Response::from_bytes(body)?.with_headers(headers))
}
