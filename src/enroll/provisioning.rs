//! The provisioning document of a new enrollment ([MS-MDE2] §2.2.9.1): certificates, the w7
//! OMA-DM account with per-device digest credentials, and the DMClient settings. The document's
//! wire shape is [`crate::proto::provdoc`]; this decides what goes in it.

use crate::codec::encode_base64;
use crate::device::{DeviceIdentity, DmCredentials};
use crate::proto::provdoc::{
    AppAuth, ClientGeneration, DmAccount, DmClient, DocShape, Poll, PrivateKeyContainer, ProvisioningDoc,
    RenewSettings, StoredCert, Win81Settings,
};

/// Random material for a new enrollment, drawn by the caller.
pub struct Secrets {
    pub device_secret: String,
    pub server_secret: String,
    pub device_nonce: [u8; 16],
    pub server_nonce: [u8; 16],
}

/// Server settings the provisioning document needs.
pub struct DocSettings<'a> {
    pub provider_id: &'a str,
    pub org_name: &'a str,
    pub management_url: &'a str,
    pub renew_period_days: u32,
    pub retry_interval_days: u32,
    pub renew_url: Option<String>,
    /// The check-in schedule (`POLL_SCHEDULE`), for both generations.
    pub poll: Poll,
    /// `SSP_HYPERLINK`: the 8.1 `SSPHyperlink`.
    pub ssp_hyperlink: Option<&'a str>,
    /// `SERVER_ROOT_CERT_HASH`: the 8.1 `SslServerRootCertHash`.
    pub server_root_cert_hash: Option<&'a str>,
    /// `MESSAGE_SIGNING=require`: Windows 10/11 devices are told to sign every message.
    pub require_message_signing: bool,
}

/// Builds the provisioning document of a first enrollment, in the shape of the client's
/// generation, and the credentials to keep.
pub fn provisioning_doc(
    generation: ClientGeneration,
    identity: &DeviceIdentity,
    user: Option<&str>,
    root: StoredCert,
    client: StoredCert,
    secrets: &Secrets,
    s: &DocSettings,
) -> (ProvisioningDoc, DmCredentials) {
    let store = identity.enrollment_type.store();
    let device_nonce_b64 = encode_base64(&secrets.device_nonce);
    let server_nonce_b64 = encode_base64(&secrets.server_nonce);
    let creds = DmCredentials {
        device_name: identity.device_id.clone(),
        device_hash_b64: crate::proto::syncml::digest::secret_hash(
            &identity.device_id,
            &secrets.device_secret,
        ),
        device_nonce_b64: device_nonce_b64.clone(),
        server_secret: secrets.server_secret.clone(),
        server_nonce_b64: server_nonce_b64.clone(),
    };
    let doc = ProvisioningDoc {
        root,
        client,
        store,
        renew: RenewSettings {
            renew_period_days: s.renew_period_days,
            retry_interval_days: s.retry_interval_days,
            server_url: s.renew_url.clone(),
        },
        account: DmAccount {
            provider_id: s.provider_id.into(),
            name: s.org_name.into(),
            addr: s.management_url.into(),
            client_cert_subject_cn: identity.device_id.clone(),
            store,
            server_auth: AppAuth {
                name: None,
                secret: secrets.server_secret.clone(),
                nonce_b64: server_nonce_b64,
            },
            device_auth: AppAuth {
                name: Some(identity.device_id.clone()),
                secret: secrets.device_secret.clone(),
                nonce_b64: device_nonce_b64,
            },
        },
        poll: s.poll,
        shape: match generation {
            ClientGeneration::Windows10 => DocShape::Windows10(DmClient {
                ent_dmid: identity.device_id.clone(),
                ent_device_name: identity.device_name.clone(),
                upn: user.map(str::to_string),
                require_message_signing: s.require_message_signing,
            }),
            ClientGeneration::Windows81 => DocShape::Windows81(Win81Settings {
                ssp_hyperlink: s.ssp_hyperlink.map(str::to_string),
                server_root_cert_hash: s.server_root_cert_hash.map(str::to_string),
                device_name: identity.device_name.clone().unwrap_or_default(),
                account_id: identity.device_id.clone(),
                key_container: PrivateKeyContainer::default(),
            }),
        },
    };
    (doc, creds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enroll::tests::rst;
    use crate::proto::provdoc::CertStore;

    #[test]
    fn document_and_credentials_agree() {
        let r = rst(&[("DeviceID", "DEV"), ("DeviceType", "CIMClient_Windows")]);
        let id = DeviceIdentity::from_request(&r, "f".into()).unwrap();
        let secrets = Secrets {
            device_secret: "d".into(),
            server_secret: "s".into(),
            device_nonce: [1; 16],
            server_nonce: [2; 16],
        };
        let settings = DocSettings {
            provider_id: "edgemdm",
            org_name: "Org",
            management_url: "https://e/ManagementServer/MDM.svc",
            renew_period_days: 60,
            retry_interval_days: 4,
            renew_url: None,
            poll: Poll::default(),
            ssp_hyperlink: Some("https://e/app"),
            server_root_cert_hash: None,
            require_message_signing: false,
        };
        let cert = |t: &str| StoredCert { thumbprint: t.into(), der: vec![0] };
        let (user, root, client) = (Some("u@e.x"), cert("R"), cert("C"));
        let build = |g| provisioning_doc(g, &id, user, root.clone(), client.clone(), &secrets, &settings);
        let (doc, creds) = build(ClientGeneration::Windows10);
        assert_eq!(doc.account.device_auth.nonce_b64, creds.device_nonce_b64);
        assert_eq!(creds.device_hash_b64, crate::proto::syncml::digest::secret_hash("DEV", "d"));
        assert_eq!(doc.store, CertStore::User);
        match &doc.shape {
            DocShape::Windows10(d) => assert_eq!(d.upn.as_deref(), Some("u@e.x")),
            other => panic!("{other:?}"),
        }

        // The same inputs for an 8.1 client: its own fields, the same account and schedule.
        let (doc81, creds81) = build(ClientGeneration::Windows81);
        assert_eq!(creds81, creds);
        assert_eq!(doc81.account, doc.account);
        assert_eq!((doc81.poll, doc81.store), (doc.poll, doc.store));
        match &doc81.shape {
            DocShape::Windows81(w) => {
                assert_eq!(w.ssp_hyperlink.as_deref(), Some("https://e/app"));
                assert_eq!(w.account_id, "DEV");
                assert_eq!(w.device_name, "");
                assert_eq!(w.key_container, PrivateKeyContainer::default());
            }
            other => panic!("{other:?}"),
        }
    }
}
