//! The OMA Client Provisioning document (`wap-provisioningdoc`) returned by WSTEP, in the two
//! shapes Windows reads:
//!
//! - **Windows 10/11** ([MS-MDE2] §2.2.9.1–5): CertificateStore (with `My/WSTEP/Renew`), the w7
//!   APPLICATION (the OMA-DM account) and `DMClient/Provider/<ProviderID>` with its `Poll`
//!   schedule.
//! - **Windows 8.1** ([MS-MDE] §3.6): CertificateStore (with a filled-in `PrivateKeyContainer`),
//!   the w7 APPLICATION with the 8.1-only parms (`SSPHyperlink`, `ServerList`, `CRLCheck`), and
//!   `Registry` characteristics that seed the enrollment: `RenewalPeriod`, the `OmaDmRetry`
//!   schedule, and where the client certificate is. There is no DMClient: `Poll` is a
//!   Windows 10 node, and 8.1 takes its schedule from `OmaDmRetry`.
//!
//! Every value is a named field, never a position in a template. The check-in schedule is one
//! [`Poll`] value rendered both ways, so it is configured once (see [`Poll`] for the mapping).

use super::discovery::{ENROLLMENT_PATH_WIN10, ENROLLMENT_PATH_WIN81};
use super::ns;
use crate::codec::encode_base64;
use crate::xml::El;
use std::fmt;

/// `APPID` of the OMA-DM account characteristic ([MS-MDE2] §2.2.9.5).
const APPID_W7: &str = "w7";
/// `DEFAULTENCODING`: this server speaks XML SyncML, never WBXML (Microsoft's samples say
/// `+wbxml`; a device given that talks WBXML).
const DEFAULT_ENCODING: &str = "application/vnd.syncml.dm+xml";
/// `CONNRETRYFREQ`, `INITIALBACKOFFTIME` (ms), `MAXBACKOFFTIME` (ms): the values of every
/// Microsoft sample, both generations.
const CONN_RETRY_FREQ: &str = "6";
const INITIAL_BACKOFF_MS: &str = "30000";
const MAX_BACKOFF_MS: &str = "120000";
/// `ROLE` of the 8.1 account: every role bit set, as in [MS-MDE] §3.6.
const ROLE_ALL_81: &str = "4294967295";
/// `CRLCheck` `0`: the 8.1 client does not check revocation of the server's TLS certificate
/// ([MS-MDE] §3.6 sample value).
const CRL_CHECK_OFF: &str = "0";

/// `PrivateKeyContainer` values of [MS-MDE] §3.6: `KeySpec` 2 (`AT_SIGNATURE`), the container
/// the 8.1 enrollment client generated its key in, `ProviderType` 1 (`PROV_RSA_FULL`).
pub const KEY_SPEC_SIGNATURE: u32 = 2;
pub const KEY_CONTAINER_81: &str = "ConfigMgrEnrollment";
pub const PROVIDER_TYPE_RSA_FULL: u32 = 1;

/// Registry keys of the 8.1 document ([MS-MDE] §3.6).
pub const REG_MACHINE_ENROLLMENT: &str = r"HKLM\Security\MachineEnrollment";
pub const REG_OMADM_RETRY: &str = r"HKLM\Security\MachineEnrollment\OmaDmRetry";
pub const REG_MDM_MACHINE_ENROLLMENT: &str = r"HKLM\Software\Windows\CurrentVersion\MDM\MachineEnrollment";
pub const REG_OMADM_ACCOUNTS: &str = r"HKLM\Security\Provisioning\OMADM\Accounts";

/// Which enrollment protocol the client speaks, and so which document shape it gets.
///
/// Decided once per request, by the service the client called: discovery sends a client whose
/// `RequestVersion` is empty or at most 2.0 (Windows 8.1, [MS-MDE]) to
/// [`ENROLLMENT_PATH_WIN81`] and every later client ([MS-MDE2]) to [`ENROLLMENT_PATH_WIN10`]
/// (see `discovery::Discover::client`), so the path a WSTEP request arrives at carries that
/// decision. Any other path (a renewal at the discovery or policy URL) is Windows 10/11.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientGeneration {
    Windows81,
    Windows10,
}

impl ClientGeneration {
    /// The generation of a request that arrived at `path` (compared case-insensitively, a
    /// trailing `/` ignored: clients spell the paths in different cases).
    pub fn from_service_path(path: &str) -> ClientGeneration {
        if path.trim_end_matches('/').eq_ignore_ascii_case(ENROLLMENT_PATH_WIN81) {
            ClientGeneration::Windows81
        } else {
            ClientGeneration::Windows10
        }
    }

    /// The enrollment service discovery hands this generation.
    pub fn service_path(self) -> &'static str {
        match self {
            ClientGeneration::Windows81 => ENROLLMENT_PATH_WIN81,
            ClientGeneration::Windows10 => ENROLLMENT_PATH_WIN10,
        }
    }

    /// `a:Action` of a fault answering a RequestSecurityToken: the 8.1 service's declared fault
    /// action ([MS-MDE] §3.4.4.1); Windows 10/11 faults carry the operation's response action.
    pub fn wstep_fault_action(self) -> &'static str {
        match self {
            ClientGeneration::Windows81 => ns::ACTION_WSTEP_FAULT_WIN81,
            ClientGeneration::Windows10 => ns::ACTION_RSTRC,
        }
    }
}

/// `My/User` for EnrollmentType `Full`, `My/System` for `Device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CertStore {
    User,
    System,
}

impl CertStore {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStore::User => "User",
            CertStore::System => "System",
        }
    }
}

/// A certificate and its SHA-1 thumbprint (the characteristic name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCert {
    pub thumbprint: String,
    pub der: Vec<u8>,
}

/// When the device renews its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewSettings {
    /// Days before expiry renewal starts: `My/WSTEP/Renew/RenewPeriod` (Windows 10/11) and
    /// `HKLM\Security\MachineEnrollment\RenewalPeriod` (8.1; [MS-MDE] §3.6 gives no unit, the
    /// value is sent in the same days as `RenewPeriod`).
    pub renew_period_days: u32,
    /// `My/WSTEP/Renew/RetryInterval` (Windows 10/11 only).
    pub retry_interval_days: u32,
    /// `My/WSTEP/Renew/ServerURL`: where ROBO renewal goes (Windows 10/11 only).
    pub server_url: Option<String>,
}

/// One `APPAUTH` block: OMA-DM digest credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAuth {
    pub name: Option<String>,
    pub secret: String,
    /// Initial nonce, base64.
    pub nonce_b64: String,
}

/// The `w7` APPLICATION characteristic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmAccount {
    /// `PROVIDER-ID`, equal to the DMClient provider name.
    pub provider_id: String,
    pub name: String,
    /// `ADDR`: the management URL (and the 8.1 `ServerList`).
    pub addr: String,
    /// Subject CN of the client certificate, for `SSLCLIENTCERTSEARCHCRITERIA`.
    pub client_cert_subject_cn: String,
    pub store: CertStore,
    /// `CLIENT`: what the server proves to the device.
    pub server_auth: AppAuth,
    /// `APPSRV`: what the device proves to the server.
    pub device_auth: AppAuth,
}

/// The check-in schedule: three sets of (interval in minutes, count), run in order. A count of
/// 0 with a non-zero interval repeats forever (and disables the later sets); an interval of 0
/// disables its set.
///
/// One value, two renderings, documented node by node in the DMClient CSP reference, where each
/// Windows 10 `Poll` node "replaces the deprecated `…\OmaDmRetry\<value>` path that previously
/// utilized the Registry CSP":
///
/// | set       | Windows 10/11 `DMClient/Provider/<id>/Poll/`                                | Windows 8.1 `OmaDmRetry` ([MS-MDE] §3.6) |
/// |-----------|-------------------------------------------------------------------------------|-------------------------------------------|
/// | first     | `IntervalForFirstSetOfRetries`, `NumberOfFirstRetries`                        | `AuxRetryInterval`, `AuxNumRetries`       |
/// | second    | `IntervalForSecondSetOfRetries`, `NumberOfSecondRetries`                      | `RetryInterval`, `NumRetries`             |
/// | remaining | `IntervalForRemainingScheduledRetries`, `NumberOfRemainingScheduledRetries`   | `Aux2RetryInterval`, `Aux2NumRetries`     |
///
/// The [`Default`] is exactly the schedule of the [MS-MDE] §3.6 sample (`AuxRetryInterval` 3 ×
/// `AuxNumRetries` 5, `RetryInterval` 15 × `NumRetries` 8, `Aux2RetryInterval` 480 forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub first_interval: u32,
    pub first_count: u32,
    pub second_interval: u32,
    pub second_count: u32,
    pub remaining_interval: u32,
    pub remaining_count: u32,
}

impl Default for Poll {
    /// 3 minutes for 15 minutes, 15 minutes for 2 hours, then every 8 hours forever: Intune's
    /// published cadence, gentle on a pay-per-request server.
    fn default() -> Self {
        Poll {
            first_interval: 3,
            first_count: 5,
            second_interval: 15,
            second_count: 8,
            remaining_interval: 480,
            remaining_count: 0,
        }
    }
}

/// Why a schedule is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollError(pub String);

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PollError {}

/// Largest interval accepted, minutes (a week); counts are capped at 1000.
const MAX_POLL_INTERVAL: u32 = 10_080;
const MAX_POLL_COUNT: u32 = 1_000;

impl Poll {
    /// Parses `<minutes>x<count>,<minutes>x<count>,<minutes>x<count>` (first, second,
    /// remaining; spaces allowed), e.g. `3x5,15x8,480x0`. Refuses what the DMClient CSP
    /// reference says breaks enrollment: `NumberOfFirstRetries` 0, or every value 0.
    pub fn parse(s: &str) -> Result<Poll, PollError> {
        let sets: Vec<&str> = s.split(',').map(str::trim).collect();
        if sets.len() != 3 {
            return Err(PollError(format!("expected three <minutes>x<count> sets, not {s:?}")));
        }
        let mut v = [(0u32, 0u32); 3];
        for (slot, set) in v.iter_mut().zip(&sets) {
            let (i, c) = set
                .split_once(['x', 'X'])
                .ok_or_else(|| PollError(format!("{set:?} is not <minutes>x<count>")))?;
            let num = |t: &str, max: u32| t.trim().parse::<u32>().ok().filter(|n| *n <= max);
            *slot = match (num(i, MAX_POLL_INTERVAL), num(c, MAX_POLL_COUNT)) {
                (Some(i), Some(c)) => (i, c),
                _ => {
                    return Err(PollError(format!(
                        "{set:?}: minutes 0–{MAX_POLL_INTERVAL} and count 0–{MAX_POLL_COUNT} expected"
                    )))
                }
            };
        }
        let p = Poll {
            first_interval: v[0].0,
            first_count: v[0].1,
            second_interval: v[1].0,
            second_count: v[1].1,
            remaining_interval: v[2].0,
            remaining_count: v[2].1,
        };
        if p.first_interval == 0 || p.first_count == 0 {
            return Err(PollError("the first set needs a non-zero interval and count".into()));
        }
        Ok(p)
    }

    /// `DMClient/Provider/<ProviderID>/Poll` (Windows 10/11, [MS-MDE2] §2.2.9.3).
    fn dmclient_poll(&self) -> El {
        characteristic("Poll")
            .child(int_parm("IntervalForFirstSetOfRetries", self.first_interval))
            .child(int_parm("NumberOfFirstRetries", self.first_count))
            .child(int_parm("IntervalForSecondSetOfRetries", self.second_interval))
            .child(int_parm("NumberOfSecondRetries", self.second_count))
            .child(int_parm("IntervalForRemainingScheduledRetries", self.remaining_interval))
            .child(int_parm("NumberOfRemainingScheduledRetries", self.remaining_count))
            .child(typed_parm("PollOnLogin", "true", "boolean"))
    }

    /// `HKLM\Security\MachineEnrollment\OmaDmRetry` (Windows 8.1, [MS-MDE] §3.6), in the
    /// sample's order.
    fn oma_dm_retry(&self) -> El {
        characteristic(REG_OMADM_RETRY)
            .child(int_parm("NumRetries", self.second_count))
            .child(int_parm("RetryInterval", self.second_interval))
            .child(int_parm("AuxNumRetries", self.first_count))
            .child(int_parm("AuxRetryInterval", self.first_interval))
            .child(int_parm("Aux2NumRetries", self.remaining_count))
            .child(int_parm("Aux2RetryInterval", self.remaining_interval))
    }
}

/// `DMClient/Provider/<ProviderID>` (Windows 10/11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmClient {
    /// `EntDMID`: our device id; must be set before the first renewal.
    pub ent_dmid: String,
    pub ent_device_name: Option<String>,
    pub upn: Option<String>,
    /// `RequireMessageSigning` (DMClient CSP): the device signs every management message
    /// with its enrollment certificate ([MS-MDM] §2.2.1.1). Sent only when set.
    pub require_message_signing: bool,
}

/// The 8.1 `PrivateKeyContainer` of the client certificate ([MS-MDE] §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKeyContainer {
    pub key_spec: u32,
    pub container_name: String,
    pub provider_type: u32,
}

impl Default for PrivateKeyContainer {
    fn default() -> Self {
        PrivateKeyContainer {
            key_spec: KEY_SPEC_SIGNATURE,
            container_name: KEY_CONTAINER_81.into(),
            provider_type: PROVIDER_TYPE_RSA_FULL,
        }
    }
}

/// What only a Windows 8.1 document carries ([MS-MDE] §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Win81Settings {
    /// APPLICATION `SSPHyperlink`: a link (e.g. a self-service app) the enrollment client may
    /// show; omitted when unset.
    pub ssp_hyperlink: Option<String>,
    /// `SslServerRootCertHash`: thumbprint of the root of the management host's TLS
    /// certificate; omitted when not configured (our CA is not that root).
    pub server_root_cert_hash: Option<String>,
    /// `…\MDM\MachineEnrollment\DeviceName` (empty when the client sent none, as in the sample).
    pub device_name: String,
    /// The key under `HKLM\Security\Provisioning\OMADM\Accounts\` that carries
    /// `SslClientCertReference`. [MS-MDE] §3.6 names it by a 32-hex id and says nothing of its
    /// origin; we use the server's device id (32 upper-case hex for 8.1 clients).
    pub account_id: String,
    pub key_container: PrivateKeyContainer,
}

/// The generation-specific part of a first-enrollment document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocShape {
    /// [MS-MDE2] §2.2.9: `My/WSTEP/Renew` and the DMClient provider.
    Windows10(DmClient),
    /// [MS-MDE] §3.6: the 8.1 parms and the `Registry` characteristics.
    Windows81(Win81Settings),
}

impl DocShape {
    pub fn generation(&self) -> ClientGeneration {
        match self {
            DocShape::Windows10(_) => ClientGeneration::Windows10,
            DocShape::Windows81(_) => ClientGeneration::Windows81,
        }
    }
}

/// The document of a first enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningDoc {
    pub root: StoredCert,
    pub client: StoredCert,
    pub store: CertStore,
    pub renew: RenewSettings,
    pub account: DmAccount,
    /// The check-in schedule: DMClient `Poll` on Windows 10/11, `OmaDmRetry` on 8.1.
    pub poll: Poll,
    pub shape: DocShape,
}

fn characteristic(kind: &str) -> El {
    El::new("characteristic").attr("type", kind)
}

fn parm(name: &str, value: &str) -> El {
    El::new("parm").attr("name", name).attr("value", value)
}

fn typed_parm(name: &str, value: &str, datatype: &str) -> El {
    parm(name, value).attr("datatype", datatype)
}

fn int_parm(name: &str, value: u32) -> El {
    typed_parm(name, &value.to_string(), "integer")
}

fn string_parm(name: &str, value: &str) -> El {
    typed_parm(name, value, "string")
}

/// `<thumbprint>/EncodedCertificate` (base64 DER on one line, [MS-MDE2] §2.2.9.2).
fn cert_characteristic(cert: &StoredCert) -> El {
    characteristic(&cert.thumbprint).child(parm("EncodedCertificate", &encode_base64(&cert.der)))
}

fn root_store(root: &StoredCert) -> El {
    characteristic("Root").child(characteristic("System").child(cert_characteristic(root)))
}

/// `%`-escapes what `SSLCLIENTCERTSEARCHCRITERIA` and the 8.1 registry values may not carry raw.
fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~!".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl DmAccount {
    fn subject(&self) -> String {
        uri_escape(&format!("CN={}", self.client_cert_subject_cn))
    }

    fn search_criteria(&self) -> String {
        format!("Subject={}&Stores={}", self.subject(), uri_escape(&format!("My\\{}", self.store.as_str())))
    }

    /// The `CLIENT` and `APPSRV` blocks, both required ([MS-MDE2] §2.2.9.5, [MS-MDE] §3.6).
    fn app_auth(&self) -> [El; 2] {
        let mut client = characteristic("APPAUTH")
            .child(parm("AAUTHLEVEL", "CLIENT"))
            .child(parm("AAUTHTYPE", "DIGEST"))
            .child(parm("AAUTHSECRET", &self.server_auth.secret))
            .child(parm("AAUTHDATA", &self.server_auth.nonce_b64));
        if let Some(n) = &self.server_auth.name {
            client.push(parm("AAUTHNAME", n));
        }
        let mut device =
            characteristic("APPAUTH").child(parm("AAUTHLEVEL", "APPSRV")).child(parm("AAUTHTYPE", "DIGEST"));
        if let Some(n) = &self.device_auth.name {
            device.push(parm("AAUTHNAME", n));
        }
        device.push(parm("AAUTHSECRET", &self.device_auth.secret));
        device.push(parm("AAUTHDATA", &self.device_auth.nonce_b64));
        [client, device]
    }

    /// The connection parms both generations share, after `ADDR` (and the 8.1 extras).
    fn connection_parms(&self) -> [El; 6] {
        [
            parm("CONNRETRYFREQ", CONN_RETRY_FREQ),
            parm("INITIALBACKOFFTIME", INITIAL_BACKOFF_MS),
            parm("MAXBACKOFFTIME", MAX_BACKOFF_MS),
            El::new("parm").attr("name", "BACKCOMPATRETRYDISABLED"),
            parm("DEFAULTENCODING", DEFAULT_ENCODING),
            parm("SSLCLIENTCERTSEARCHCRITERIA", &self.search_criteria()),
        ]
    }
}

impl ProvisioningDoc {
    pub fn generation(&self) -> ClientGeneration {
        self.shape.generation()
    }

    pub fn to_xml(&self) -> String {
        let children = match &self.shape {
            DocShape::Windows10(dmclient) => self.windows10(dmclient),
            DocShape::Windows81(w81) => self.windows81(w81),
        };
        El::new("wap-provisioningdoc").attr("version", "1.1").children(children).to_xml()
    }

    /// [MS-MDE2] §2.2.9.1.
    fn windows10(&self, d: &DmClient) -> Vec<El> {
        let renew = &self.renew;
        let mut renew_el = characteristic("Renew")
            .child(typed_parm("ROBOSupport", "true", "boolean"))
            .child(int_parm("RenewPeriod", renew.renew_period_days))
            .child(int_parm("RetryInterval", renew.retry_interval_days));
        if let Some(url) = &renew.server_url {
            renew_el.push(string_parm("ServerURL", url));
        }
        let my = characteristic("My")
            .child(
                characteristic(self.store.as_str())
                    .child(cert_characteristic(&self.client))
                    .child(characteristic("PrivateKeyContainer")),
            )
            .child(characteristic("WSTEP").child(renew_el));
        let cert_store = characteristic("CertificateStore").child(root_store(&self.root)).child(my);

        let a = &self.account;
        let application = characteristic("APPLICATION")
            .child(parm("APPID", APPID_W7))
            .child(parm("PROVIDER-ID", &a.provider_id))
            .child(parm("NAME", &a.name))
            .child(parm("ADDR", &a.addr))
            .children(a.connection_parms())
            .children(a.app_auth());

        let mut provider = characteristic(&a.provider_id).child(string_parm("EntDMID", &d.ent_dmid));
        if let Some(n) = &d.ent_device_name {
            provider.push(string_parm("EntDeviceName", n));
        }
        if let Some(u) = &d.upn {
            provider.push(string_parm("UPN", u));
        }
        if d.require_message_signing {
            provider.push(typed_parm("RequireMessageSigning", "true", "boolean"));
        }
        provider.push(self.poll.dmclient_poll());
        let dmclient = characteristic("DMClient").child(characteristic("Provider").child(provider));
        vec![cert_store, application, dmclient]
    }

    /// [MS-MDE] §3.6, in the sample's order.
    fn windows81(&self, w: &Win81Settings) -> Vec<El> {
        let k = &w.key_container;
        let key_container = characteristic("PrivateKeyContainer")
            .child(parm("KeySpec", &k.key_spec.to_string()))
            .child(parm("ContainerName", &k.container_name))
            .child(parm("ProviderType", &k.provider_type.to_string()));
        let my = characteristic("My").child(
            characteristic(self.store.as_str()).child(cert_characteristic(&self.client).child(key_container)),
        );
        let cert_store = characteristic("CertificateStore").child(root_store(&self.root)).child(my);

        let a = &self.account;
        let mut application = characteristic("APPLICATION")
            .child(parm("APPID", APPID_W7))
            .child(parm("PROVIDER-ID", &a.provider_id))
            .child(parm("NAME", &a.name));
        if let Some(link) = &w.ssp_hyperlink {
            application.push(parm("SSPHyperlink", link));
        }
        let application = application
            .child(parm("ADDR", &a.addr))
            .child(parm("ServerList", &a.addr))
            .child(parm("ROLE", ROLE_ALL_81))
            .child(parm("CRLCheck", CRL_CHECK_OFF))
            .children(a.connection_parms())
            .children(a.app_auth());

        let schedule = characteristic("Registry")
            .child(
                characteristic(REG_MACHINE_ENROLLMENT)
                    .child(int_parm("RenewalPeriod", self.renew.renew_period_days)),
            )
            .child(self.poll.oma_dm_retry());
        let device_name = characteristic("Registry").child(
            characteristic(REG_MDM_MACHINE_ENROLLMENT).child(string_parm("DeviceName", &w.device_name)),
        );
        let store = self.store.as_str();
        let mut cert_location = characteristic(REG_MDM_MACHINE_ENROLLMENT);
        if let Some(hash) = &w.server_root_cert_hash {
            cert_location.push(string_parm("SslServerRootCertHash", hash));
        }
        cert_location.push(string_parm("SslClientCertStore", &uri_escape(&format!("MY\\{store}"))));
        cert_location.push(string_parm("SslClientCertSubjectName", &a.subject()));
        cert_location.push(string_parm("SslClientCertHash", &self.client.thumbprint));
        let account = characteristic(&format!("{REG_OMADM_ACCOUNTS}\\{}", w.account_id))
            .child(string_parm("SslClientCertReference", &format!("My;{store};{}", self.client.thumbprint)));
        let cert_registry = characteristic("Registry").child(cert_location).child(account);
        vec![cert_store, application, schedule, device_name, cert_registry]
    }
}

/// The document answering a renewal.
///
/// - Windows 10/11: the new certificate with `PrivateKeyContainer` nested in it, the root
///   again, and the provider id (the Learn renewal sample).
/// - Windows 8.1: "only the CertificateStore/My/User/EncodedCertificate is returned"
///   ([MS-MDE] §3.5.4.1.1.2), under the store the device enrolled into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalDoc {
    pub root: StoredCert,
    pub client: StoredCert,
    pub store: CertStore,
    pub provider_id: String,
    pub generation: ClientGeneration,
}

impl RenewalDoc {
    pub fn to_xml(&self) -> String {
        let doc = El::new("wap-provisioningdoc").attr("version", "1.1");
        match self.generation {
            ClientGeneration::Windows10 => {
                let my =
                    characteristic("My").child(characteristic(self.store.as_str()).child(
                        cert_characteristic(&self.client).child(characteristic("PrivateKeyContainer")),
                    ));
                doc.child(characteristic("CertificateStore").child(root_store(&self.root)).child(my))
                    .child(characteristic("APPLICATION").child(parm("PROVIDER-ID", &self.provider_id)))
            }
            ClientGeneration::Windows81 => {
                let my = characteristic("My")
                    .child(characteristic(self.store.as_str()).child(cert_characteristic(&self.client)));
                doc.child(characteristic("CertificateStore").child(my))
            }
        }
        .to_xml()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{self, Element};

    fn account(store: CertStore) -> DmAccount {
        DmAccount {
            provider_id: "edgemdm".into(),
            name: "Contoso & Co".into(),
            addr: "https://e.example/ManagementServer/MDM.svc".into(),
            client_cert_subject_cn: "DEV1".into(),
            store,
            server_auth: AppAuth { name: None, secret: "srv\"secret".into(), nonce_b64: "AAAA".into() },
            device_auth: AppAuth {
                name: Some("DEV1".into()),
                secret: "dev<secret>".into(),
                nonce_b64: "BBBB".into(),
            },
        }
    }

    fn sample() -> ProvisioningDoc {
        ProvisioningDoc {
            root: StoredCert { thumbprint: "AA".repeat(20), der: vec![1, 2, 3] },
            client: StoredCert { thumbprint: "BB".repeat(20), der: vec![4, 5, 6] },
            store: CertStore::System,
            renew: RenewSettings { renew_period_days: 60, retry_interval_days: 4, server_url: None },
            account: account(CertStore::System),
            poll: Poll::default(),
            shape: DocShape::Windows10(DmClient {
                ent_dmid: "DEV1".into(),
                ent_device_name: Some("PC-1".into()),
                upn: Some("a@b.c".into()),
                require_message_signing: false,
            }),
        }
    }

    fn sample81() -> ProvisioningDoc {
        ProvisioningDoc {
            store: CertStore::User,
            account: account(CertStore::User),
            poll: Poll {
                first_interval: 2,
                first_count: 7,
                second_interval: 20,
                second_count: 9,
                remaining_interval: 1440,
                remaining_count: 0,
            },
            shape: DocShape::Windows81(Win81Settings {
                ssp_hyperlink: Some("https://e.example/app?a=1&b=2".into()),
                server_root_cert_hash: None,
                device_name: String::new(),
                account_id: "DEV1".into(),
                key_container: PrivateKeyContainer::default(),
            }),
            ..sample()
        }
    }

    fn chars<'a>(e: &'a Element, kind: &str) -> Option<&'a Element> {
        e.elements().find(|c| c.name == "characteristic" && c.attr("type") == Some(kind))
    }

    fn all_chars<'a>(e: &'a Element, kind: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        e.elements().filter(move |c| c.name == "characteristic" && c.attr("type") == Some(kind))
    }

    fn parm_value<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
        e.elements().find(|c| c.name == "parm" && c.attr("name") == Some(name)).and_then(|p| p.attr("value"))
    }

    #[test]
    fn document_places_everything_by_name() {
        let doc = xml::parse(&sample().to_xml()).unwrap();
        assert_eq!(doc.name, "wap-provisioningdoc");
        let cs = chars(&doc, "CertificateStore").unwrap();
        let root = chars(chars(chars(cs, "Root").unwrap(), "System").unwrap(), &"AA".repeat(20)).unwrap();
        assert_eq!(parm_value(root, "EncodedCertificate"), Some("AQID"));
        let my_system = chars(chars(cs, "My").unwrap(), "System").unwrap();
        assert_eq!(
            parm_value(chars(my_system, &"BB".repeat(20)).unwrap(), "EncodedCertificate"),
            Some("BAUG")
        );
        assert!(chars(my_system, "PrivateKeyContainer").is_some());
        let renew = chars(chars(chars(cs, "My").unwrap(), "WSTEP").unwrap(), "Renew").unwrap();
        assert_eq!(parm_value(renew, "RenewPeriod"), Some("60"));

        let app = chars(&doc, "APPLICATION").unwrap();
        assert_eq!(parm_value(app, "APPID"), Some("w7"));
        assert_eq!(parm_value(app, "NAME"), Some("Contoso & Co"));
        assert_eq!(parm_value(app, "DEFAULTENCODING"), Some("application/vnd.syncml.dm+xml"));
        assert_eq!(
            parm_value(app, "SSLCLIENTCERTSEARCHCRITERIA"),
            Some("Subject=CN%3DDEV1&Stores=My%5CSystem")
        );
        let auths: Vec<_> = app.elements().filter(|c| c.attr("type") == Some("APPAUTH")).collect();
        assert_eq!(auths.len(), 2);
        let appsrv = auths.iter().find(|a| parm_value(a, "AAUTHLEVEL") == Some("APPSRV")).unwrap();
        assert_eq!(parm_value(appsrv, "AAUTHNAME"), Some("DEV1"));
        assert_eq!(parm_value(appsrv, "AAUTHSECRET"), Some("dev<secret>"));
        let client = auths.iter().find(|a| parm_value(a, "AAUTHLEVEL") == Some("CLIENT")).unwrap();
        assert_eq!(parm_value(client, "AAUTHSECRET"), Some("srv\"secret"));

        let provider =
            chars(chars(chars(&doc, "DMClient").unwrap(), "Provider").unwrap(), "edgemdm").unwrap();
        assert_eq!(parm_value(provider, "EntDMID"), Some("DEV1"));
        let poll = chars(provider, "Poll").unwrap();
        assert_eq!(parm_value(poll, "NumberOfFirstRetries"), Some("5"));
    }

    #[test]
    fn windows10_documents_carry_nothing_of_81() {
        let doc = xml::parse(&sample().to_xml()).unwrap();
        assert!(chars(&doc, "Registry").is_none());
        let app = chars(&doc, "APPLICATION").unwrap();
        for name in ["SSPHyperlink", "ServerList", "CRLCheck", "ROLE"] {
            assert_eq!(parm_value(app, name), None, "{name}");
        }
        let my = chars(chars(&doc, "CertificateStore").unwrap(), "My").unwrap();
        let pkc = chars(chars(my, "System").unwrap(), "PrivateKeyContainer").unwrap();
        assert_eq!(pkc.elements().count(), 0, "empty on Windows 10");
    }

    #[test]
    fn windows81_document_has_its_own_shape() {
        let d = sample81();
        assert_eq!(d.generation(), ClientGeneration::Windows81);
        let doc = xml::parse(&d.to_xml()).unwrap();
        assert!(chars(&doc, "DMClient").is_none(), "Poll is a Windows 10 node");
        let my = chars(chars(&doc, "CertificateStore").unwrap(), "My").unwrap();
        assert!(chars(my, "WSTEP").is_none());
        let cert = chars(chars(my, "User").unwrap(), &"BB".repeat(20)).unwrap();
        let pkc = chars(cert, "PrivateKeyContainer").unwrap();
        assert_eq!(parm_value(pkc, "KeySpec"), Some("2"));
        assert_eq!(parm_value(pkc, "ContainerName"), Some("ConfigMgrEnrollment"));
        assert_eq!(parm_value(pkc, "ProviderType"), Some("1"));

        let app = chars(&doc, "APPLICATION").unwrap();
        assert_eq!(parm_value(app, "SSPHyperlink"), Some("https://e.example/app?a=1&b=2"));
        assert_eq!(parm_value(app, "ServerList"), parm_value(app, "ADDR"));
        assert_eq!(parm_value(app, "CRLCheck"), Some("0"));

        let registries: Vec<_> = all_chars(&doc, "Registry").collect();
        assert_eq!(registries.len(), 3);
        let retry = chars(registries[0], REG_OMADM_RETRY).unwrap();
        // The schedule lands by the DMClient CSP's node-by-node mapping.
        let expect = [
            ("AuxRetryInterval", "2"),
            ("AuxNumRetries", "7"),
            ("RetryInterval", "20"),
            ("NumRetries", "9"),
            ("Aux2RetryInterval", "1440"),
            ("Aux2NumRetries", "0"),
        ];
        for (name, value) in expect {
            assert_eq!(parm_value(retry, name), Some(value), "{name}");
        }
        let renewal = chars(registries[0], REG_MACHINE_ENROLLMENT).unwrap();
        assert_eq!(parm_value(renewal, "RenewalPeriod"), Some("60"));
        let loc = chars(registries[2], REG_MDM_MACHINE_ENROLLMENT).unwrap();
        assert_eq!(parm_value(loc, "SslServerRootCertHash"), None, "not configured, not sent");
        assert_eq!(parm_value(loc, "SslClientCertHash"), Some("BB".repeat(20).as_str()));
        assert_eq!(parm_value(loc, "SslClientCertStore"), Some("MY%5CUser"));
        assert_eq!(parm_value(loc, "SslClientCertSubjectName"), Some("CN%3DDEV1"));
        let acct = chars(registries[2], r"HKLM\Security\Provisioning\OMADM\Accounts\DEV1").unwrap();
        assert_eq!(
            parm_value(acct, "SslClientCertReference"),
            Some(format!("My;User;{}", "BB".repeat(20)).as_str())
        );
    }

    #[test]
    fn optional_81_values_appear_only_when_set() {
        let mut d = sample81();
        if let DocShape::Windows81(w) = &mut d.shape {
            w.ssp_hyperlink = None;
            w.server_root_cert_hash = Some("CC".repeat(20));
        }
        let doc = xml::parse(&d.to_xml()).unwrap();
        assert_eq!(parm_value(chars(&doc, "APPLICATION").unwrap(), "SSPHyperlink"), None);
        let loc =
            all_chars(&doc, "Registry").nth(2).and_then(|r| chars(r, REG_MDM_MACHINE_ENROLLMENT)).unwrap();
        assert_eq!(parm_value(loc, "SslServerRootCertHash"), Some("CC".repeat(20).as_str()));
    }

    #[test]
    fn generation_follows_the_service_path() {
        for p in [
            "/EnrollmentServer/DeviceEnrollmentWebservice.svc",
            "/enrollmentserver/deviceenrollmentwebservice.svc/",
        ] {
            assert_eq!(ClientGeneration::from_service_path(p), ClientGeneration::Windows81, "{p}");
        }
        for p in [
            "/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc",
            "/EnrollmentServer/Discovery.svc",
            "/EnrollmentServer/PolicyEnrollmentWebservice.svc",
        ] {
            assert_eq!(ClientGeneration::from_service_path(p), ClientGeneration::Windows10, "{p}");
        }
        for g in [ClientGeneration::Windows81, ClientGeneration::Windows10] {
            assert_eq!(ClientGeneration::from_service_path(g.service_path()), g);
        }
        assert_eq!(ClientGeneration::Windows81.wstep_fault_action(), ns::ACTION_WSTEP_FAULT_WIN81);
        assert_eq!(ClientGeneration::Windows10.wstep_fault_action(), ns::ACTION_RSTRC);
    }

    #[test]
    fn discovery_and_enrollment_agree_on_the_generation() {
        use crate::proto::discovery::{AuthPolicy, Discover, DiscoverResponse, DiscoveryConfig};
        let cfg =
            DiscoveryConfig { auth_policy: AuthPolicy::Federated, base_url: "https://e.example".into() };
        for (version, expected) in [
            (None, ClientGeneration::Windows81),
            (Some("2.0"), ClientGeneration::Windows81),
            (Some("3.0"), ClientGeneration::Windows10),
            (Some("9.0"), ClientGeneration::Windows10),
        ] {
            let d = Discover { request_version: version.map(str::to_string), ..Default::default() };
            let url = DiscoverResponse::answer(&d, &cfg).unwrap().enrollment_service_url;
            let path = url.strip_prefix("https://e.example").unwrap();
            assert_eq!(ClientGeneration::from_service_path(path), expected, "{version:?}");
        }
    }

    #[test]
    fn poll_schedule_parses_and_refuses() {
        assert_eq!(Poll::parse("3x5,15x8,480x0").unwrap(), Poll::default());
        assert_eq!(Poll::parse(" 3X5 , 15x8, 480x0 ").unwrap(), Poll::default());
        let p = Poll::parse("10x6,0x0,1440x0").unwrap();
        assert_eq!((p.first_interval, p.second_interval, p.remaining_interval), (10, 0, 1440));
        for bad in [
            "",
            "3x5,15x8",
            "3x5,15x8,480x0,1x1",
            "3x0,15x8,480x0",
            "0x5,15x8,480x0",
            "3x5,15,480x0",
            "3x5,ax8,480x0",
            "3x5,15x8,99999x0",
            "3x5,15x8,-1x0",
        ] {
            assert!(Poll::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn renewal_documents_of_both_generations() {
        let mut d = RenewalDoc {
            root: StoredCert { thumbprint: "AA".repeat(20), der: vec![1] },
            client: StoredCert { thumbprint: "CC".repeat(20), der: vec![2] },
            store: CertStore::User,
            provider_id: "edgemdm".into(),
            generation: ClientGeneration::Windows10,
        };
        let doc = xml::parse(&d.to_xml()).unwrap();
        let cs = chars(&doc, "CertificateStore").unwrap();
        let cert = chars(chars(chars(cs, "My").unwrap(), "User").unwrap(), &"CC".repeat(20)).unwrap();
        assert!(chars(cert, "PrivateKeyContainer").is_some());
        assert!(chars(cs, "Root").is_some());
        assert_eq!(parm_value(chars(&doc, "APPLICATION").unwrap(), "PROVIDER-ID"), Some("edgemdm"));

        d.generation = ClientGeneration::Windows81;
        let doc = xml::parse(&d.to_xml()).unwrap();
        assert_eq!(doc.elements().count(), 1, "CertificateStore only");
        let cs = chars(&doc, "CertificateStore").unwrap();
        assert_eq!(cs.elements().count(), 1, "My only");
        let cert = chars(chars(chars(cs, "My").unwrap(), "User").unwrap(), &"CC".repeat(20)).unwrap();
        assert_eq!(cert.elements().count(), 1, "EncodedCertificate only");
        assert_eq!(parm_value(cert, "EncodedCertificate"), Some("Ag=="));
    }
}
