//! Server settings from the Worker's vars and secrets, parsed once per request from a lookup
//! function so the parsing is testable without a Worker.

use crate::proto::discovery::AuthPolicy;
use crate::proto::provdoc::Poll;
use std::fmt;

/// `PROVIDER-ID` of the DM account and the DMClient provider name.
pub const PROVIDER_ID: &str = "edgemdm";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub auth_policy: AuthPolicy,
    /// `PUBLIC_BASE_URL`, without a trailing slash; `None` means "the request's origin".
    pub public_base_url: Option<String>,
    /// `MANAGEMENT_BASE_URL`: origin of the management address (ADDR) when it differs from the
    /// enrollment host, e.g. a host name with Cloudflare mTLS turned on.
    pub management_base_url: Option<String>,
    /// Organisation name: the DM account's display name and the login page's title.
    pub org_name: String,
    /// `PROVIDER-ID` of the w7 account and DMClient provider.
    pub provider_id: String,
    pub cert_validity_days: u32,
    pub renew_period_days: u32,
    pub renew_retry_days: u32,
    /// `POLL_SCHEDULE`: when devices check in, for both document shapes (DMClient `Poll` on
    /// Windows 10/11, `OmaDmRetry` on 8.1).
    pub poll: Poll,
    /// `SSP_HYPERLINK`: the link a Windows 8.1 enrollment client may show (`SSPHyperlink`).
    pub ssp_hyperlink: Option<String>,
    /// `SERVER_ROOT_CERT_HASH`: SHA-1 thumbprint (40 upper-case hex) of the root CA of the TLS
    /// certificate `PUBLIC_BASE_URL` serves; Windows 8.1 documents carry it as
    /// `SslServerRootCertHash` when set.
    pub server_root_cert_hash: Option<String>,
    /// `ADMIN_TOKEN` secret; admin routes are closed when it is unset.
    pub admin_token: Option<String>,
    pub password_iterations: u32,
    /// How many times a command is sent without a status before it is marked failed.
    pub max_command_attempts: u32,
    /// `ALLOW_LOOPBACK_APPRU`: the sign-in page also posts back to `http(s)` loopback
    /// addresses (tests, local tools). Off by default: Windows only uses `ms-app://`.
    pub allow_loopback_appru: bool,
    /// `LOGIN_TOKEN_TTL_SECONDS`: lifetime of the token the sign-in page issues.
    pub login_token_ttl_secs: u32,
    /// `LOGIN_MAX_FAILURES` failed sign-ins per `LOGIN_WINDOW_SECONDS`, per email and per client
    /// address, before the page answers 429.
    pub login_max_failures: u32,
    pub login_window_secs: u32,
    /// `COMMAND_HISTORY_MAX` finished commands kept per device, none older than
    /// `COMMAND_HISTORY_DAYS`.
    pub command_history_max: u32,
    pub command_history_days: u32,
    /// `RETIRE_GRACE_SECONDS`: how long a retiring device has to answer its Unenroll.
    pub retire_grace_secs: u32,
    /// `PROFILE_VERIFY_INTERVAL_SECONDS`: how often the settings of verified profiles are
    /// read back at check-in to find drift (0: every session).
    pub profile_verify_interval_secs: u32,
    /// `MESSAGE_SIGNING`: `off` (default), `verify` (check an `MDM-Signature` / `MS-Signature`
    /// header where present) or `require`.
    pub message_signing: MessageSigning,
    /// `INDEX_CHECKIN_GRANULARITY_SECONDS`: the fleet index's check-in time is rewritten at
    /// most this often per device.
    pub index_checkin_granularity_secs: u32,
    /// `INDEX_RETRY_SECONDS`: how soon a failed fleet index write is retried.
    pub index_retry_secs: u32,
    /// `AUDIT_RETENTION_DAYS`: audit log entries older than this are deleted.
    pub audit_retention_days: u32,
    /// `ADMIN_SESSION_TTL_SECONDS`: how long a console session lasts.
    pub admin_session_ttl_secs: u32,
}

/// Whether management messages must carry the device's CMS signature ([MS-MDM] §2.2.1.1,
/// the DMClient `RequireMessageSigning` node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageSigning {
    Off,
    /// Verify a signature where a message carries one; accept unsigned messages.
    Verify,
    /// Refuse unsigned messages.
    Require,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

fn number(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError(format!("{name} must be a whole number from {min} to {max}, not {v:?}"))),
        },
    }
}

impl Config {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let auth_policy = match get("AUTH_POLICY").filter(|v| !v.trim().is_empty()) {
            None => AuthPolicy::Federated,
            Some(v) => AuthPolicy::parse(&v).ok_or_else(|| {
                ConfigError(format!("AUTH_POLICY must be OnPremise or Federated, not {v:?}"))
            })?,
        };
        let public_base_url = get("PUBLIC_BASE_URL")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        let management_base_url = get("MANAGEMENT_BASE_URL")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        for u in public_base_url.iter().chain(management_base_url.iter()) {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ConfigError(format!("base URLs must be http(s) URLs, not {u:?}")));
            }
        }
        let org_name = get("ORG_NAME").map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let cert_validity_days = number(get, "CERT_VALIDITY_DAYS", 365, 2, 3650)?;
        let renew_period_days = number(get, "RENEW_PERIOD_DAYS", 60, 1, 1000)?;
        let renew_retry_days = number(get, "RENEW_RETRY_DAYS", 4, 1, 1000)?;
        if renew_period_days >= cert_validity_days {
            return Err(ConfigError("RENEW_PERIOD_DAYS must be shorter than CERT_VALIDITY_DAYS".into()));
        }
        if renew_retry_days > renew_period_days {
            return Err(ConfigError("RENEW_RETRY_DAYS must not exceed RENEW_PERIOD_DAYS".into()));
        }
        let poll = match get("POLL_SCHEDULE").filter(|v| !v.trim().is_empty()) {
            None => Poll::default(),
            Some(v) => Poll::parse(&v).map_err(|e| ConfigError(format!("POLL_SCHEDULE: {e}")))?,
        };
        let optional = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let ssp_hyperlink = optional("SSP_HYPERLINK");
        if let Some(u) = &ssp_hyperlink {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                let msg = format!("SSP_HYPERLINK must be an http(s) URL, not {u:?}");
                return Err(ConfigError(msg));
            }
        }
        let server_root_cert_hash = optional("SERVER_ROOT_CERT_HASH");
        if let Some(h) = &server_root_cert_hash {
            if h.len() != 40 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                let msg = format!("SERVER_ROOT_CERT_HASH must be a SHA-1 thumbprint, not {h:?}");
                return Err(ConfigError(msg));
            }
        }
        let allow_loopback_appru = match get("ALLOW_LOOPBACK_APPRU").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v.is_empty() || v == "false" || v == "0" => false,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) => {
                return Err(ConfigError(format!("ALLOW_LOOPBACK_APPRU must be true or false, not {v:?}")))
            }
        };
        Ok(Config {
            auth_policy,
            public_base_url,
            management_base_url,
            org_name: org_name.unwrap_or_else(|| "edgemdm".into()),
            provider_id: PROVIDER_ID.into(),
            cert_validity_days,
            renew_period_days,
            renew_retry_days,
            poll,
            ssp_hyperlink,
            server_root_cert_hash: server_root_cert_hash.map(|h| h.to_ascii_uppercase()),
            admin_token: get("ADMIN_TOKEN").filter(|t| !t.trim().is_empty()),
            max_command_attempts: number(get, "MAX_COMMAND_ATTEMPTS", 3, 1, 100)?,
            password_iterations: number(
                get,
                "PASSWORD_ITERATIONS",
                crate::users::DEFAULT_ITERATIONS,
                1_000,
                crate::users::MAX_ITERATIONS,
            )?,
            allow_loopback_appru,
            login_token_ttl_secs: number(get, "LOGIN_TOKEN_TTL_SECONDS", 600, 1, 3600)?,
            login_max_failures: number(get, "LOGIN_MAX_FAILURES", 10, 1, 10_000)?,
            login_window_secs: number(get, "LOGIN_WINDOW_SECONDS", 900, 1, 86_400)?,
            command_history_max: number(get, "COMMAND_HISTORY_MAX", 200, 1, 10_000)?,
            command_history_days: number(get, "COMMAND_HISTORY_DAYS", 90, 1, 3650)?,
            retire_grace_secs: number(get, "RETIRE_GRACE_SECONDS", 7 * 86_400, 60, 365 * 86_400)?,
            profile_verify_interval_secs: number(
                get,
                "PROFILE_VERIFY_INTERVAL_SECONDS",
                28_800,
                0,
                365 * 86_400,
            )?,
            index_checkin_granularity_secs: number(get, "INDEX_CHECKIN_GRANULARITY_SECONDS", 900, 0, 86_400)?,
            index_retry_secs: number(get, "INDEX_RETRY_SECONDS", 60, 1, 86_400)?,
            audit_retention_days: number(get, "AUDIT_RETENTION_DAYS", 365, 1, 3650)?,
            admin_session_ttl_secs: number(get, "ADMIN_SESSION_TTL_SECONDS", 28_800, 60, 30 * 86_400)?,
            message_signing: match get("MESSAGE_SIGNING").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
                None | Some("") | Some("off") => MessageSigning::Off,
                Some("verify") => MessageSigning::Verify,
                Some("require") => MessageSigning::Require,
                Some(v) => {
                    return Err(ConfigError(format!(
                        "MESSAGE_SIGNING must be off, verify or require, not {v:?}"
                    )))
                }
            },
        })
    }

    /// The origin used in every URL the server hands out.
    pub fn base_url(&self, request_origin: &str) -> String {
        self.public_base_url.clone().unwrap_or_else(|| request_origin.trim_end_matches('/').to_string())
    }

    /// The origin of the management address.
    pub fn management_url(&self, request_origin: &str) -> String {
        let base = self.management_base_url.clone().unwrap_or_else(|| self.base_url(request_origin));
        format!("{base}/ManagementServer/MDM.svc")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(&move |k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.auth_policy, AuthPolicy::Federated);
        assert_eq!(c.cert_validity_days, 365);
        assert!(!c.allow_loopback_appru);
        assert_eq!((c.login_token_ttl_secs, c.login_max_failures, c.login_window_secs), (600, 10, 900));
        assert_eq!(c.base_url("http://127.0.0.1:8787/"), "http://127.0.0.1:8787");
        assert_eq!(c.admin_token, None);
        assert_eq!(c.poll, Poll::default());
        assert_eq!((c.ssp_hyperlink, c.server_root_cert_hash), (None, None));
        assert_eq!(c.profile_verify_interval_secs, 28_800);
        assert_eq!(cfg(&[("PROFILE_VERIFY_INTERVAL_SECONDS", "0")]).unwrap().profile_verify_interval_secs, 0);
        assert!(cfg(&[("PROFILE_VERIFY_INTERVAL_SECONDS", "-1")]).is_err());
    }

    #[test]
    fn windows81_settings_and_schedule() {
        let hash = "5be128213d05dc6cb87a059469130fc6686992ef";
        let c = cfg(&[
            ("POLL_SCHEDULE", "5x4,30x6,1440x0"),
            ("SSP_HYPERLINK", " https://e.example/app "),
            ("SERVER_ROOT_CERT_HASH", hash),
        ])
        .unwrap();
        let p = c.poll;
        assert_eq!((p.first_interval, p.first_count, p.remaining_interval), (5, 4, 1440));
        assert_eq!(c.ssp_hyperlink.as_deref(), Some("https://e.example/app"));
        let upper = hash.to_ascii_uppercase();
        assert_eq!(c.server_root_cert_hash.as_deref(), Some(upper.as_str()));
        let blank = cfg(&[("SSP_HYPERLINK", ""), ("SERVER_ROOT_CERT_HASH", " ")]).unwrap();
        assert_eq!(blank.ssp_hyperlink, None);
        assert_eq!(blank.server_root_cert_hash, None);
        assert!(cfg(&[("POLL_SCHEDULE", "3x0,15x8,480x0")]).is_err());
        assert!(cfg(&[("SSP_HYPERLINK", "javascript:alert(1)")]).is_err());
        assert!(cfg(&[("SERVER_ROOT_CERT_HASH", "5BE128")]).is_err());
        assert!(cfg(&[("SERVER_ROOT_CERT_HASH", "Z".repeat(40).as_str())]).is_err());
    }

    #[test]
    fn values_and_errors() {
        let c = cfg(&[
            ("AUTH_POLICY", "federated"),
            ("PUBLIC_BASE_URL", "https://e.example/"),
            ("ADMIN_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(c.auth_policy, AuthPolicy::Federated);
        assert_eq!(c.base_url("http://ignored"), "https://e.example");
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        assert!(cfg(&[("AUTH_POLICY", "Certificate")]).is_err());
        assert!(cfg(&[("CERT_VALIDITY_DAYS", "x")]).is_err());
        assert!(cfg(&[("CERT_VALIDITY_DAYS", "30"), ("RENEW_PERIOD_DAYS", "60")]).is_err());
        assert!(cfg(&[("PUBLIC_BASE_URL", "ftp://x")]).is_err());
        assert!(cfg(&[("MANAGEMENT_BASE_URL", "x")]).is_err());
        let m =
            cfg(&[("PUBLIC_BASE_URL", "https://e.example"), ("MANAGEMENT_BASE_URL", "https://m.example/")])
                .unwrap();
        assert_eq!(m.management_url("http://o"), "https://m.example/ManagementServer/MDM.svc");
        assert_eq!(cfg(&[]).unwrap().management_url("http://o/"), "http://o/ManagementServer/MDM.svc");
        assert_eq!(cfg(&[("AUTH_POLICY", "OnPremise")]).unwrap().auth_policy, AuthPolicy::OnPremise);
        assert!(cfg(&[("ALLOW_LOOPBACK_APPRU", "true")]).unwrap().allow_loopback_appru);
        assert!(!cfg(&[("ALLOW_LOOPBACK_APPRU", "false")]).unwrap().allow_loopback_appru);
        assert!(cfg(&[("ALLOW_LOOPBACK_APPRU", "yes please")]).is_err());
        assert!(cfg(&[("LOGIN_TOKEN_TTL_SECONDS", "0")]).is_err());
        assert_eq!(cfg(&[("LOGIN_MAX_FAILURES", "3")]).unwrap().login_max_failures, 3);
    }
}
