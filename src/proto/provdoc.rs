//! The OMA Client Provisioning document (`wap-provisioningdoc`) returned by WSTEP
//! ([MS-MDE2] §2.2.9.1–5): CertificateStore, the w7 APPLICATION (the OMA-DM account) and
//! DMClient. Every value is a named field, never a position in a template.

use crate::codec::encode_base64;
use crate::xml::El;

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

/// `My/WSTEP/Renew`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewSettings {
    pub renew_period_days: u32,
    pub retry_interval_days: u32,
    /// `ServerURL`: where ROBO renewal goes.
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
    /// `ADDR`: the management URL.
    pub addr: String,
    /// Subject CN of the client certificate, for `SSLCLIENTCERTSEARCHCRITERIA`.
    pub client_cert_subject_cn: String,
    pub store: CertStore,
    /// `CLIENT`: what the server proves to the device.
    pub server_auth: AppAuth,
    /// `APPSRV`: what the device proves to the server.
    pub device_auth: AppAuth,
}

/// `DMClient/Provider/<ProviderID>/Poll` schedules, minutes and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// `DMClient/Provider/<ProviderID>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmClient {
    /// `EntDMID`: our device id; must be set before the first renewal.
    pub ent_dmid: String,
    pub ent_device_name: Option<String>,
    pub upn: Option<String>,
    pub poll: Poll,
}

/// The document of a first enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningDoc {
    pub root: StoredCert,
    pub client: StoredCert,
    pub store: CertStore,
    pub renew: RenewSettings,
    pub account: DmAccount,
    pub dmclient: DmClient,
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

fn root_store(root: &StoredCert) -> El {
    characteristic("Root").child(
        characteristic("System")
            .child(characteristic(&root.thumbprint).child(parm("EncodedCertificate", &encode_base64(&root.der)))),
    )
}

/// `%`-escapes what `SSLCLIENTCERTSEARCHCRITERIA` values may not carry raw.
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

impl ProvisioningDoc {
    pub fn to_xml(&self) -> String {
        let renew = &self.renew;
        let mut renew_el = characteristic("Renew")
            .child(typed_parm("ROBOSupport", "true", "boolean"))
            .child(typed_parm("RenewPeriod", &renew.renew_period_days.to_string(), "integer"))
            .child(typed_parm("RetryInterval", &renew.retry_interval_days.to_string(), "integer"));
        if let Some(url) = &renew.server_url {
            renew_el.push(typed_parm("ServerURL", url, "string"));
        }
        let my = characteristic("My")
            .child(
                characteristic(self.store.as_str())
                    .child(
                        characteristic(&self.client.thumbprint)
                            .child(parm("EncodedCertificate", &encode_base64(&self.client.der))),
                    )
                    .child(characteristic("PrivateKeyContainer")),
            )
            .child(characteristic("WSTEP").child(renew_el));
        let cert_store = characteristic("CertificateStore").child(root_store(&self.root)).child(my);

        let a = &self.account;
        let criteria = format!(
            "Subject={}&Stores={}",
            uri_escape(&format!("CN={}", a.client_cert_subject_cn)),
            uri_escape(&format!("My\\{}", a.store.as_str()))
        );
        let mut client_auth = characteristic("APPAUTH")
            .child(parm("AAUTHLEVEL", "CLIENT"))
            .child(parm("AAUTHTYPE", "DIGEST"))
            .child(parm("AAUTHSECRET", &a.server_auth.secret))
            .child(parm("AAUTHDATA", &a.server_auth.nonce_b64));
        if let Some(n) = &a.server_auth.name {
            client_auth.push(parm("AAUTHNAME", n));
        }
        let mut device_auth = characteristic("APPAUTH")
            .child(parm("AAUTHLEVEL", "APPSRV"))
            .child(parm("AAUTHTYPE", "DIGEST"));
        if let Some(n) = &a.device_auth.name {
            device_auth.push(parm("AAUTHNAME", n));
        }
        device_auth.push(parm("AAUTHSECRET", &a.device_auth.secret));
        device_auth.push(parm("AAUTHDATA", &a.device_auth.nonce_b64));
        let application = characteristic("APPLICATION")
            .child(parm("APPID", "w7"))
            .child(parm("PROVIDER-ID", &a.provider_id))
            .child(parm("NAME", &a.name))
            .child(parm("ADDR", &a.addr))
            .child(parm("CONNRETRYFREQ", "6"))
            .child(parm("INITIALBACKOFFTIME", "30000"))
            .child(parm("MAXBACKOFFTIME", "120000"))
            .child(El::new("parm").attr("name", "BACKCOMPATRETRYDISABLED"))
            .child(parm("DEFAULTENCODING", "application/vnd.syncml.dm+xml"))
            .child(parm("SSLCLIENTCERTSEARCHCRITERIA", &criteria))
            .child(client_auth)
            .child(device_auth);

        let d = &self.dmclient;
        let mut provider = characteristic(&a.provider_id).child(typed_parm("EntDMID", &d.ent_dmid, "string"));
        if let Some(n) = &d.ent_device_name {
            provider.push(typed_parm("EntDeviceName", n, "string"));
        }
        if let Some(u) = &d.upn {
            provider.push(typed_parm("UPN", u, "string"));
        }
        let p = &d.poll;
        let int = |v: u32| v.to_string();
        provider.push(
            characteristic("Poll")
                .child(typed_parm("IntervalForFirstSetOfRetries", &int(p.first_interval), "integer"))
                .child(typed_parm("NumberOfFirstRetries", &int(p.first_count), "integer"))
                .child(typed_parm("IntervalForSecondSetOfRetries", &int(p.second_interval), "integer"))
                .child(typed_parm("NumberOfSecondRetries", &int(p.second_count), "integer"))
                .child(typed_parm("IntervalForRemainingScheduledRetries", &int(p.remaining_interval), "integer"))
                .child(typed_parm("NumberOfRemainingScheduledRetries", &int(p.remaining_count), "integer"))
                .child(typed_parm("PollOnLogin", "true", "boolean")),
        );
        let dmclient = characteristic("DMClient").child(characteristic("Provider").child(provider));

        El::new("wap-provisioningdoc")
            .attr("version", "1.1")
            .child(cert_store)
            .child(application)
            .child(dmclient)
            .to_xml()
    }
}

/// The document answering a renewal: the new certificate (with `PrivateKeyContainer` nested in
/// it, as in the renewal sample), the root again, and the provider id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalDoc {
    pub root: StoredCert,
    pub client: StoredCert,
    pub store: CertStore,
    pub provider_id: String,
}

impl RenewalDoc {
    pub fn to_xml(&self) -> String {
        let my = characteristic("My").child(
            characteristic(self.store.as_str()).child(
                characteristic(&self.client.thumbprint)
                    .child(parm("EncodedCertificate", &encode_base64(&self.client.der)))
                    .child(characteristic("PrivateKeyContainer")),
            ),
        );
        El::new("wap-provisioningdoc")
            .attr("version", "1.1")
            .child(characteristic("CertificateStore").child(root_store(&self.root)).child(my))
            .child(characteristic("APPLICATION").child(parm("PROVIDER-ID", &self.provider_id)))
            .to_xml()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{self, Element};

    fn sample() -> ProvisioningDoc {
        ProvisioningDoc {
            root: StoredCert { thumbprint: "AA".repeat(20), der: vec![1, 2, 3] },
            client: StoredCert { thumbprint: "BB".repeat(20), der: vec![4, 5, 6] },
            store: CertStore::System,
            renew: RenewSettings { renew_period_days: 60, retry_interval_days: 4, server_url: None },
            account: DmAccount {
                provider_id: "edgemdm".into(),
                name: "Contoso & Co".into(),
                addr: "https://e.example/ManagementServer/MDM.svc".into(),
                client_cert_subject_cn: "DEV1".into(),
                store: CertStore::System,
                server_auth: AppAuth { name: None, secret: "srv\"secret".into(), nonce_b64: "AAAA".into() },
                device_auth: AppAuth { name: Some("DEV1".into()), secret: "dev<secret>".into(), nonce_b64: "BBBB".into() },
            },
            dmclient: DmClient {
                ent_dmid: "DEV1".into(),
                ent_device_name: Some("PC-1".into()),
                upn: Some("a@b.c".into()),
                poll: Poll::default(),
            },
        }
    }

    fn chars<'a>(e: &'a Element, kind: &str) -> Option<&'a Element> {
        e.elements().find(|c| c.name == "characteristic" && c.attr("type") == Some(kind))
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
        assert_eq!(parm_value(chars(my_system, &"BB".repeat(20)).unwrap(), "EncodedCertificate"), Some("BAUG"));
        assert!(chars(my_system, "PrivateKeyContainer").is_some());
        let renew = chars(chars(chars(cs, "My").unwrap(), "WSTEP").unwrap(), "Renew").unwrap();
        assert_eq!(parm_value(renew, "RenewPeriod"), Some("60"));

        let app = chars(&doc, "APPLICATION").unwrap();
        assert_eq!(parm_value(app, "APPID"), Some("w7"));
        assert_eq!(parm_value(app, "NAME"), Some("Contoso & Co"));
        assert_eq!(parm_value(app, "DEFAULTENCODING"), Some("application/vnd.syncml.dm+xml"));
        assert_eq!(parm_value(app, "SSLCLIENTCERTSEARCHCRITERIA"), Some("Subject=CN%3DDEV1&Stores=My%5CSystem"));
        let auths: Vec<_> = app.elements().filter(|c| c.attr("type") == Some("APPAUTH")).collect();
        assert_eq!(auths.len(), 2);
        let appsrv = auths.iter().find(|a| parm_value(a, "AAUTHLEVEL") == Some("APPSRV")).unwrap();
        assert_eq!(parm_value(appsrv, "AAUTHNAME"), Some("DEV1"));
        assert_eq!(parm_value(appsrv, "AAUTHSECRET"), Some("dev<secret>"));
        let client = auths.iter().find(|a| parm_value(a, "AAUTHLEVEL") == Some("CLIENT")).unwrap();
        assert_eq!(parm_value(client, "AAUTHSECRET"), Some("srv\"secret"));

        let provider = chars(chars(chars(&doc, "DMClient").unwrap(), "Provider").unwrap(), "edgemdm").unwrap();
        assert_eq!(parm_value(provider, "EntDMID"), Some("DEV1"));
        let poll = chars(provider, "Poll").unwrap();
        assert_eq!(parm_value(poll, "NumberOfFirstRetries"), Some("5"));
    }

    #[test]
    fn renewal_document_nests_the_key_container() {
        let d = RenewalDoc {
            root: StoredCert { thumbprint: "AA".repeat(20), der: vec![1] },
            client: StoredCert { thumbprint: "CC".repeat(20), der: vec![2] },
            store: CertStore::User,
            provider_id: "edgemdm".into(),
        };
        let doc = xml::parse(&d.to_xml()).unwrap();
        let cs = chars(&doc, "CertificateStore").unwrap();
        let cert = chars(chars(chars(cs, "My").unwrap(), "User").unwrap(), &"CC".repeat(20)).unwrap();
        assert!(chars(cert, "PrivateKeyContainer").is_some());
        assert_eq!(parm_value(chars(&doc, "APPLICATION").unwrap(), "PROVIDER-ID"), Some("edgemdm"));
    }
}
