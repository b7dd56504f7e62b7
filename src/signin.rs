//! The Federated sign-in page (`/windows-web-agent`), pure: its flow ([`page`], [`submit`]:
//! rate limit, token or password, login token), validation of the attacker-controlled
//! `appru`, and the HTML of the sign-in form, the end page that posts `wresult` back
//! to the enrollment client, and the refusal pages. Everything echoed is HTML-escaped; pages
//! carry no external resources and only nonce'd inline style and script, under the
//! [`Page::csp`] policy.

use crate::device::valid_device_id;
use crate::enroll::flow::Authority;
use crate::object_call::StoreError;
use crate::tokens::authority::{Stage, TokenCall, TokenCallError, TokenReply};
use crate::tokens::{looks_like_token, RateLimit};
use crate::users::{normalize_email, Directory, Kdf};
use std::fmt;

/// Longest `appru` accepted. Real ones (`ms-app://windows.immersivecontrolpanel`, package SIDs
/// `ms-app://s-1-15-2-…`) are well under 200 characters.
pub const MAX_APPRU_LEN: usize = 512;
/// Longest `login_hint` echoed into the form (an email is at most 254 bytes).
pub const MAX_HINT_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppruError {
    Missing,
    TooLong,
    /// Not an `ms-app://` address (nor an allowed loopback one).
    Scheme,
    /// Characters outside the plain set this server accepts.
    Characters,
}

impl fmt::Display for AppruError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppruError::Missing => "appru is missing",
            AppruError::TooLong => "appru is too long",
            AppruError::Scheme => "appru is not an ms-app:// address",
            AppruError::Characters => "appru contains characters that are not accepted",
        })
    }
}

impl std::error::Error for AppruError {}

/// A validated `appru`: where the end page posts, and the CSP `form-action` source allowing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appru {
    pub url: String,
    pub form_action: String,
}

fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~')
}

/// Accepts `ms-app://<app id>` (what the Windows client sends), and with `allow_loopback`
/// an `http(s)://` address on `127.0.0.1`, `localhost` or `[::1]` (for tests and local tools).
/// Everything else (`javascript:`, `data:`, other hosts, relative URLs, user info, queries,
/// fragments, unusual characters) is refused.
pub fn validate_appru(raw: Option<&str>, allow_loopback: bool) -> Result<Appru, AppruError> {
    let url = raw.ok_or(AppruError::Missing)?;
    if url.is_empty() {
        return Err(AppruError::Missing);
    }
    if url.len() > MAX_APPRU_LEN {
        return Err(AppruError::TooLong);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(AppruError::Scheme);
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "ms-app" => {
            // ms-app://<app id>[/<path>], app id starting with a letter or digit.
            let (app, path) = rest.split_once('/').unwrap_or((rest, ""));
            let app_ok =
                app.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) && app.chars().all(plain);
            if !app_ok || !path.chars().all(|c| plain(c) || c == '/') {
                return Err(AppruError::Characters);
            }
            Ok(Appru { url: url.to_string(), form_action: "ms-app:".into() })
        }
        "http" | "https" if allow_loopback => {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let (host, port) = if let Some(v6) = authority.strip_prefix("[::1]") {
                ("[::1]", v6)
            } else {
                match authority.split_once(':') {
                    Some((h, _)) => (h, &authority[h.len()..]),
                    None => (authority, ""),
                }
            };
            let host = host.to_ascii_lowercase();
            if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") {
                return Err(AppruError::Scheme);
            }
            if !port.is_empty() {
                let Some(digits) = port.strip_prefix(':') else {
                    return Err(AppruError::Characters);
                };
                let ok = (1..=5).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && digits.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
                if !ok {
                    return Err(AppruError::Characters);
                }
            }
            if !path.chars().all(|c| plain(c) || c == '/') {
                return Err(AppruError::Characters);
            }
            Ok(Appru { url: url.to_string(), form_action: format!("{scheme}://{host}{port}") })
        }
        _ => Err(AppruError::Scheme),
    }
}

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The hint to prefill: the `login_hint`, if it is short and printable.
pub fn clean_hint(hint: Option<&str>) -> String {
    hint.map(str::trim)
        .filter(|h| h.len() <= MAX_HINT_LEN && !h.chars().any(char::is_control))
        .unwrap_or_default()
        .to_string()
}

/// Neutral messages: none of them says whether an email exists.
pub const MSG_BAD_CREDENTIALS: &str = "The email or password is incorrect.";
pub const MSG_RATE_LIMITED: &str = "Too many sign-in attempts. Wait a few minutes, then try again.";
pub const MSG_BAD_APPRU: &str =
    "This sign-in link is not valid. Start the enrollment again from Windows Settings.";
pub const MSG_MISSING_FIELDS: &str = "Enter your email and password.";
pub const MSG_SERVER: &str = "Sign-in is not available right now. Try again later.";

/// A rendered page and the Content-Security-Policy it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub html: String,
    pub csp: String,
}

/// Headers every page of the sign-in flow carries besides its CSP.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
];

fn csp(nonce: &str, script: bool, form_action: &str) -> String {
    let script_src = if script { format!("'nonce-{nonce}'") } else { "'none'".into() };
    format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src {script_src}; img-src 'none'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

const STYLE: &str = "body{font-family:'Segoe UI',system-ui,sans-serif;margin:0;padding:1rem;color:#1b1b1b;background:#fff}\
main{max-width:26rem;margin:0 auto}\
h1{font-size:1.4rem;margin:.5rem 0 1rem}\
p{line-height:1.4}\
label{display:block;font-weight:600;margin:.9rem 0 .3rem}\
input[type=email],input[type=password]{box-sizing:border-box;width:100%;font-size:1rem;padding:.5rem;border:1px solid #767676;border-radius:2px}\
button{margin-top:1.2rem;font-size:1rem;padding:.5rem 1.5rem;border:0;border-radius:2px;background:#0067b8;color:#fff;cursor:pointer}\
button:focus,input:focus{outline:2px solid #1b1b1b;outline-offset:2px}\
.error{border-left:4px solid #c50f1f;background:#fde7e9;padding:.5rem .75rem;margin:0 0 1rem}";

fn document(title: &str, nonce: &str, body: &str, script: Option<&str>) -> String {
    let script = script.map(|s| format!("<script nonce=\"{nonce}\">{s}</script>")).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head>\
         <body><main>{body}</main>{script}</body></html>\n",
        title = escape(title),
    )
}

/// What the sign-in form shows and carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginForm<'a> {
    pub org_name: &'a str,
    pub appru: &'a str,
    pub email: &'a str,
    /// A device id the request named, carried to bind the token.
    pub device_id: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// The sign-in form. It posts to the page's own URL; no script.
pub fn login_page(form: &LoginForm<'_>, nonce: &str, status: u16) -> Page {
    let error = form
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let described = if form.error.is_some() { " aria-describedby=\"error\"" } else { "" };
    let autofocus_email = if form.email.is_empty() { " autofocus" } else { "" };
    let autofocus_password = if form.email.is_empty() { "" } else { " autofocus" };
    let device = form
        .device_id
        .map(|d| format!("<input type=\"hidden\" name=\"device_id\" value=\"{}\">", escape(d)))
        .unwrap_or_default();
    let body = format!(
        "<h1>{org}</h1><p>Sign in to enroll this device with {org}.</p>{error}\
         <form method=\"post\" action=\"/windows-web-agent\" autocomplete=\"on\">\
         <input type=\"hidden\" name=\"appru\" value=\"{appru}\">{device}\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required maxlength=\"254\" \
         value=\"{email}\"{described}{autofocus_email}>\
         <label for=\"password\">Password or enrollment token</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required \
         maxlength=\"2048\"{described}{autofocus_password}>\
         <button type=\"submit\">Sign in</button></form>",
        org = escape(form.org_name),
        appru = escape(form.appru),
        email = escape(form.email),
    );
    Page {
        status,
        html: document(&format!("Sign in – {}", form.org_name), nonce, &body, None),
        csp: csp(nonce, false, "'self'"),
    }
}

/// The end page: a form posting `wresult` to `appru`, submitted on load by a nonce'd script,
/// with a button for when scripts are off.
pub fn end_page(org_name: &str, appru: &Appru, wresult: &str, nonce: &str) -> Page {
    let body = format!(
        "<h1>{org}</h1><p id=\"status\">You are signed in. Returning to Windows…</p>\
         <form method=\"post\" action=\"{action}\" id=\"result\">\
         <input type=\"hidden\" name=\"wresult\" value=\"{wresult}\">\
         <button type=\"submit\">Continue</button></form>",
        org = escape(org_name),
        action = escape(&appru.url),
        wresult = escape(wresult),
    );
    let script = "document.getElementById('result').submit();";
    Page {
        status: 200,
        html: document("Working…", nonce, &body, Some(script)),
        csp: csp(nonce, true, &appru.form_action),
    }
}

/// A page with a message and no form (bad `appru`, server trouble).
pub fn message_page(org_name: &str, message: &str, nonce: &str, status: u16) -> Page {
    let body =
        format!("<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>", escape(org_name), escape(message));
    Page { status, html: document(org_name, nonce, &body, None), csp: csp(nonce, false, "'none'") }
}

/// Client address key when the request has no `CF-Connecting-IP` (local development).
pub const LOCAL_CLIENT: &str = "local";

/// The failure windows a sign-in attempt counts against: its account's and its client
/// address's. `scope` keeps the admin console's windows (`admin-`) apart from the enrollment
/// directory's (`""`).
pub fn attempt_keys(scope: &str, email: &str, client: Option<&str>) -> Vec<String> {
    let client = client.filter(|a| !a.is_empty() && a.len() <= 64).unwrap_or(LOCAL_CLIENT);
    vec![format!("{scope}email:{email}"), format!("{scope}ip:{client}")]
}
/// Largest sign-in form body read.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// What the sign-in page needs besides the request.
pub struct SigninSettings<'a> {
    pub org_name: &'a str,
    pub allow_loopback_appru: bool,
    pub limit: RateLimit,
    pub login_token_ttl_secs: u32,
}

/// `GET /windows-web-agent?appru=…&login_hint=…[&device_id=…]`: the form, or a refusal page
/// for a bad `appru`. `query`: the decoded query pairs in order; the first of each name counts.
pub fn page(query: &[(String, String)], s: &SigninSettings<'_>, nonce: &str) -> (Page, Option<String>) {
    let first = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let appru = match validate_appru(first("appru"), s.allow_loopback_appru) {
        Ok(a) => a,
        Err(e) => {
            return (message_page(s.org_name, MSG_BAD_APPRU, nonce, 400), Some(format!("sign-in page: {e}")))
        }
    };
    let email = clean_hint(first("login_hint"));
    let form = LoginForm {
        org_name: s.org_name,
        appru: &appru.url,
        email: &email,
        device_id: first("device_id").filter(|d| valid_device_id(d)),
        error: None,
    };
    (login_page(&form, nonce, 200), None)
}

/// `POST /windows-web-agent` (form: `appru`, `email`, `password`, optional `device_id`):
/// counts the attempt against the email and the client address, then accepts an enrollment
/// token typed as the password (handed to Windows as it is: its uses are spent at enrollment)
/// or the user's password (a fresh single-use login token). `fields`: `None` when the body was
/// too large or not a form. Returns the page and what to log.
pub async fn submit<P: Authority + Directory + Kdf>(
    ports: &P,
    s: &SigninSettings<'_>,
    fields: Option<&[(String, String)]>,
    client: Option<&str>,
    nonce: &str,
) -> Result<(Page, Option<String>), StoreError> {
    let field = |name: &str| fields.and_then(|f| f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    let appru = match validate_appru(field("appru").as_deref(), s.allow_loopback_appru) {
        Ok(a) => a,
        Err(e) => {
            return Ok((
                message_page(s.org_name, MSG_BAD_APPRU, nonce, 400),
                Some(format!("sign-in page: {e}")),
            ))
        }
    };
    let typed_email = clean_hint(field("email").as_deref());
    let email = normalize_email(&typed_email);
    let password = field("password").unwrap_or_default();
    let device = field("device_id").filter(|d| valid_device_id(d));
    let again = |error: &str, status: u16| {
        let form = LoginForm {
            org_name: s.org_name,
            appru: &appru.url,
            email: &typed_email,
            device_id: device.as_deref(),
            error: Some(error),
        };
        Ok((login_page(&form, nonce, status), None))
    };
    if email.is_empty() || password.is_empty() {
        return again(MSG_MISSING_FIELDS, 200);
    }

    let keys = attempt_keys("", &email, client);
    match ports.tokens(TokenCall::Attempt { keys: keys.clone(), limit: s.limit }).await? {
        Ok(_) => {}
        Err(TokenCallError::RateLimited { .. }) => return again(MSG_RATE_LIMITED, 429),
        Err(e) => return Err(StoreError(format!("token authority refused the attempt: {e:?}"))),
    }

    if looks_like_token(&password) {
        let call = TokenCall::Use {
            token: password.clone(),
            stage: Stage::Check,
            device_id: device.clone(),
            email: Some(email.clone()),
        };
        if let Ok(TokenReply::Accepted { .. }) = ports.tokens(call).await? {
            ports.tokens(TokenCall::Release { keys }).await?.map_err(|e| StoreError(format!("{e:?}")))?;
            return Ok((end_page(s.org_name, &appru, &password, nonce), None));
        }
    }

    if crate::users::authenticate(ports, &email, &password).await?.is_none() {
        return again(MSG_BAD_CREDENTIALS, 200);
    }
    let call = TokenCall::IssueLogin {
        sub: email,
        dev: device,
        ttl_secs: s.login_token_ttl_secs.into(),
        release: keys,
    };
    match ports.tokens(call).await? {
        Ok(TokenReply::LoginIssued { token, .. }) => Ok((end_page(s.org_name, &appru, &token, nonce), None)),
        other => Err(StoreError(format!("token authority answered {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(u: &str, loopback: bool) -> Appru {
        validate_appru(Some(u), loopback).unwrap_or_else(|e| panic!("{u}: {e}"))
    }

    #[test]
    fn ms_app_is_accepted() {
        let a = ok("ms-app://windows.immersivecontrolpanel", false);
        assert_eq!(a.url, "ms-app://windows.immersivecontrolpanel");
        assert_eq!(a.form_action, "ms-app:");
        ok(
            "ms-app://s-1-15-2-1861897761-1695161497-2927542615-642690995-327840285-2659745135-2630312742",
            false,
        );
        ok("MS-APP://Windows.ImmersiveControlPanel", false);
        ok("ms-app://appid", false);
    }

    #[test]
    fn everything_else_is_refused() {
        for (bad, why) in [
            ("javascript:alert(1)", AppruError::Scheme),
            ("javascript://ms-app/%0aalert(1)", AppruError::Scheme),
            ("JaVaScRiPt:alert(1)", AppruError::Scheme),
            ("data:text/html,<script>alert(1)</script>", AppruError::Scheme),
            ("data://text/html", AppruError::Scheme),
            ("http://evil.example/cb", AppruError::Scheme),
            ("https://evil.example/cb", AppruError::Scheme),
            ("http://127.0.0.1/cb", AppruError::Scheme), // loopback not allowed here
            ("/relative", AppruError::Scheme),
            ("relative/path", AppruError::Scheme),
            ("//evil.example/x", AppruError::Scheme),
            ("ms-app:", AppruError::Scheme),
            ("ms-app://", AppruError::Characters),
            ("ms-app://x\"><script>", AppruError::Characters),
            ("ms-app://x y", AppruError::Characters),
            ("ms-app://x?q=1", AppruError::Characters),
            ("ms-app://x#f", AppruError::Characters),
            ("ms-app://user@host", AppruError::Characters),
            ("ms-app://-x", AppruError::Characters),
            ("ms-app://x\n", AppruError::Characters),
            ("", AppruError::Missing),
        ] {
            assert_eq!(validate_appru(Some(bad), false), Err(why), "{bad:?}");
        }
        assert_eq!(validate_appru(None, true), Err(AppruError::Missing));
        let long = format!("ms-app://{}", "a".repeat(MAX_APPRU_LEN));
        assert_eq!(validate_appru(Some(&long), true), Err(AppruError::TooLong));
        ok(&format!("ms-app://{}", "a".repeat(MAX_APPRU_LEN - 9)), false);
    }

    #[test]
    fn loopback_only_when_allowed() {
        let a = ok("http://127.0.0.1:43123/capture", true);
        assert_eq!(a.form_action, "http://127.0.0.1:43123");
        assert_eq!(ok("https://localhost/x/y", true).form_action, "https://localhost");
        assert_eq!(ok("http://[::1]:8080", true).form_action, "http://[::1]:8080");
        assert_eq!(ok("http://LOCALHOST:1", true).form_action, "http://localhost:1");
        ok("ms-app://windows.immersivecontrolpanel", true);
        for bad in [
            "http://127.0.0.1.evil.example/x",
            "http://127.0.0.1@evil.example/x",
            "http://evil.example@127.0.0.1/x",
            "http://127.0.0.2/x",
            "http://localhost:0/x",
            "http://localhost:65536/x",
            "http://localhost:80a/x",
            "http://localhost:/x",
            "http://localhost:8080/x?y=1",
            "http://localhost/x\"onload=",
            "http://[::1]x/",
            "http://[::1]\u{e9}/",
            "http://localhost:\u{e9}/",
            "http://\u{e9}:1/",
            "ftp://127.0.0.1/x",
            "javascript:alert(1)",
            "data:text/html,x",
        ] {
            assert!(validate_appru(Some(bad), true).is_err(), "{bad:?}");
        }
        assert_eq!(validate_appru(Some("http://127.0.0.1:43123/capture"), false), Err(AppruError::Scheme));
    }

    const HOSTILE: &str = "\"><script>alert(1)</script><x a='";

    #[test]
    fn escaping() {
        assert_eq!(escape(HOSTILE), "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;x a=&#39;");
        assert_eq!(escape("a&b\u{0}c"), "a&amp;bc");
    }

    #[test]
    fn login_page_escapes_what_it_echoes() {
        let p = login_page(
            &LoginForm {
                org_name: "<Org & Co>",
                appru: "ms-app://x\"><script>alert(2)</script>",
                email: HOSTILE,
                device_id: Some("\"><b>"),
                error: Some("<img src=x onerror=alert(3)>"),
            },
            "NONCE",
            200,
        );
        assert!(!p.html.contains("<script>"), "{}", p.html);
        assert!(!p.html.contains("<img"));
        assert!(!p.html.contains("<b>"));
        assert!(!p.html.contains("<Org"));
        assert!(p.html.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;x a=&#39;\""));
        assert!(p.html.contains("&lt;img src=x onerror=alert(3)&gt;"));
        assert!(p.html.contains("&lt;Org &amp; Co&gt;"));
        assert!(p.html.contains("<label for=\"email\">") && p.html.contains("<label for=\"password\">"));
        assert!(p.html.contains("role=\"alert\""));
        assert!(p.csp.contains("script-src 'none'"));
        assert!(p.csp.contains("frame-ancestors 'none'"));
        assert!(p.csp.contains("form-action 'self'"));
        assert!(!p.html.contains("http://") && !p.html.contains("https://"), "no external resources");
    }

    #[test]
    fn end_page_posts_wresult_to_appru() {
        let appru = ok("http://127.0.0.1:9/cb", true);
        let p = end_page("Org", &appru, "v1.a\"b<c.d", "N0nce");
        assert!(p.html.contains("<form method=\"post\" action=\"http://127.0.0.1:9/cb\""));
        assert!(p.html.contains("name=\"wresult\" value=\"v1.a&quot;b&lt;c.d\""));
        assert!(p.html.contains("<script nonce=\"N0nce\">"));
        assert!(p.html.contains("<button type=\"submit\">"));
        assert!(p.csp.contains("script-src 'nonce-N0nce'"));
        assert!(p.csp.contains("form-action http://127.0.0.1:9;"));
        let ms = end_page("Org", &ok("ms-app://windows.immersivecontrolpanel", false), "t", "n");
        assert!(ms.csp.contains("form-action ms-app:;"));
    }

    #[test]
    fn message_page_escapes() {
        let p = message_page("O<", "bad <appru>", "n", 400);
        assert_eq!(p.status, 400);
        assert!(p.html.contains("bad &lt;appru&gt;") && p.html.contains("O&lt;"));
        assert!(!p.html.contains("<form"));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A small deterministic generator over characters that matter to the parsers.
        let alphabet: Vec<char> = "ms-app:/\\[]:1270.localhost@?#%é\u{0}\n\"'<>hHtTpPsS9".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let s: String =
                (0..len).map(|i| alphabet[((seed >> (i % 50)) as usize + i * 7) % alphabet.len()]).collect();
            for prefix in ["", "ms-app://", "http://", "http://[::1]", "http://localhost:"] {
                let u = format!("{prefix}{s}");
                let _ = validate_appru(Some(&u), true);
                let _ = validate_appru(Some(&u), false);
                let _ = crate::tokens::verify(&[1; 32], &u, 0);
            }
        }
    }

    #[test]
    fn hints() {
        assert_eq!(clean_hint(Some(" a@b.co ")), "a@b.co");
        assert_eq!(clean_hint(Some("a\nb")), "");
        assert_eq!(clean_hint(Some(&"a".repeat(300))), "");
        assert_eq!(clean_hint(None), "");
    }
}
