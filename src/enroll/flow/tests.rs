//! The enrollment and renewal flows over in-memory objects that run the objects' own rules,
//! with a failure injected at each step between objects.

use super::*;
use crate::context::Counter;
use crate::device::calls::memory::MemoryDevice;
use crate::issuer::memory::MemoryCa;
use crate::object_call::block_on;
use crate::pki::provider::RsaPublicKey;
use crate::pki::testutil::{cms_sign, now, rsa_key_and_csr, TempDir};
use crate::pki::{Hash, RustCrypto, Verifier};
use crate::proto::discovery::AuthPolicy;
use crate::proto::provdoc::ClientGeneration;
use crate::proto::wstep::{RequestType, TokenRequest};
use crate::tokens::authority::memory::MemoryTokens;
use crate::users::UserRecord;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// Where the world fails on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Tokens,
    Ca,
    Device,
    /// Only the device object's Enroll call fails.
    DeviceEnroll,
    Index,
}

struct World {
    now: u64,
    tokens: MemoryTokens,
    ca: MemoryCa,
    devices: RefCell<BTreeMap<String, MemoryDevice>>,
    users: BTreeMap<String, UserRecord>,
    index: RefCell<BTreeMap<String, DeviceIndexEntry>>,
    kdf_calls: Cell<u32>,
    fail: Cell<Option<Step>>,
    entropy: RefCell<Counter>,
    /// Certificates the CA signed, base64 DER by thumbprint (the CA keeps only records).
    issued: RefCell<BTreeMap<String, String>>,
    hardware: RefCell<BTreeMap<String, String>>,
    /// Seeds the randomness of each enrollment (secrets differ between enrollments).
    seed: Cell<u64>,
}

const PASSWORD: &str = "correct horse";

impl World {
    fn new() -> World {
        let now = now();
        let salt = [9u8; 16];
        let hash = crate::users::reference_pbkdf2(PASSWORD, &salt, 10);
        let user = UserRecord {
            email: "alice@contoso.com".into(),
            display_name: "Alice".into(),
            password_hash: crate::users::PasswordHash { iterations: 10, salt: salt.to_vec(), hash }.encode(),
            created_at: "t".into(),
        };
        World {
            now,
            tokens: MemoryTokens::default(),
            ca: MemoryCa::new(now),
            devices: RefCell::new(BTreeMap::new()),
            users: [(user.email.clone(), user)].into(),
            index: RefCell::new(BTreeMap::new()),
            kdf_calls: Cell::new(0),
            fail: Cell::new(None),
            entropy: RefCell::new(Counter(1)),
            issued: RefCell::new(BTreeMap::new()),
            hardware: RefCell::new(BTreeMap::new()),
            seed: Cell::new(77),
        }
    }

    fn failing(&self, step: Step) -> Result<(), StoreError> {
        if self.fail.get() == Some(step) {
            return Err(StoreError(format!("{step:?} is down")));
        }
        Ok(())
    }

    fn login_token(&self, device: Option<&str>) -> String {
        let call = TokenCall::IssueLogin {
            sub: "alice@contoso.com".into(),
            dev: device.map(Into::into),
            ttl_secs: 600,
            release: vec![],
        };
        match self.tokens.call(call, self.now * 1000, &mut *self.entropy.borrow_mut()) {
            Ok(TokenReply::LoginIssued { token, .. }) => token,
            other => panic!("{other:?}"),
        }
    }

    fn device(&self, id: &str) -> Option<DeviceRecord> {
        self.devices.borrow().get(id).and_then(|d| d.record.borrow().clone())
    }
}

impl Authority for World {
    async fn tokens(&self, call: TokenCall) -> Result<Result<TokenReply, TokenCallError>, StoreError> {
        self.failing(Step::Tokens)?;
        Ok(self.tokens.call(call, self.now * 1000, &mut *self.entropy.borrow_mut()))
    }
}

impl Issuer for World {
    async fn ca(&self, call: CaCall) -> Result<Result<CaReply, CaError>, StoreError> {
        self.failing(Step::Ca)?;
        let reply = self.ca.call(call, self.now);
        if let Ok(CaReply::Issued(i)) = &reply {
            self.issued.borrow_mut().insert(i.thumbprint.clone(), i.cert_b64.clone());
        }
        Ok(reply)
    }
}

impl Devices for World {
    async fn device(
        &self,
        device_id: &str,
        call: DeviceCall,
    ) -> Result<Result<DeviceReply, DeviceError>, StoreError> {
        self.failing(Step::Device)?;
        if matches!(call, DeviceCall::Enroll { .. }) {
            self.failing(Step::DeviceEnroll)?;
        }
        let mut devices = self.devices.borrow_mut();
        let device = devices.entry(device_id.to_string()).or_default();
        Ok(device.call(call, self.now * 1000))
    }
}

impl Directory for World {
    async fn user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.users.get(email).cloned())
    }

    async fn put_device(&self, entry: &DeviceIndexEntry) -> Result<(), StoreError> {
        self.failing(Step::Index)?;
        self.index.borrow_mut().insert(entry.device_id.clone(), entry.clone());
        Ok(())
    }

    async fn hardware(&self, hw_dev_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.hardware.borrow().get(hw_dev_id).cloned())
    }

    async fn put_hardware(&self, hw_dev_id: &str, device_id: &str) -> Result<(), StoreError> {
        self.hardware.borrow_mut().insert(hw_dev_id.into(), device_id.into());
        Ok(())
    }
}

impl Verifier for World {
    async fn verify_rsa_pkcs1v15(
        &self,
        key: &RsaPublicKey,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        RustCrypto.verify_rsa_pkcs1v15(key, hash, message, signature).await
    }

    async fn verify_p256_sha256(
        &self,
        spki_der: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        RustCrypto.verify_p256_sha256(spki_der, message, signature).await
    }
}

impl Kdf for World {
    async fn pbkdf2_sha256(
        &self,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Vec<u8>, StoreError> {
        self.kdf_calls.set(self.kdf_calls.get() + 1);
        Ok(crate::users::reference_pbkdf2(password, salt, iterations).to_vec())
    }
}

fn config() -> Config {
    Config::from_lookup(&|name| match name {
        "AUTH_POLICY" => Some(AuthPolicy::OnPremise.as_str().into()),
        "LOGIN_MAX_FAILURES" => Some("3".into()),
        _ => None,
    })
    .unwrap()
}

fn request(now_ms: u64) -> SoapRequest<'static> {
    SoapRequest {
        body: None,
        base_url: "https://enterpriseenrollment.contoso.com",
        client_cert: None,
        client: Some("203.0.113.7"),
        generation: ClientGeneration::Windows10,
        now_ms,
    }
}

fn rst(device_id: &str, token: TokenRequest, request_type: RequestType) -> RequestSecurityToken {
    let context = [("DeviceID", device_id), ("DeviceType", "CIMClient_Windows"), ("EnrollmentType", "Full")];
    RequestSecurityToken {
        request_type,
        token,
        context: context.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
    }
}

fn csr(dir: &TempDir, name: &str) -> (String, Vec<u8>) {
    rsa_key_and_csr(dir, name, 2048, name)
}

fn enroll(w: &World, principal: &Principal, device_id: &str, csr_der: &[u8]) -> Result<String, EnrollError> {
    let cfg = config();
    let rst = rst(device_id, TokenRequest::Pkcs10(csr_der.to_vec()), RequestType::Issue);
    w.seed.set(w.seed.get() + 1_000);
    let mut entropy = Counter(w.seed.get());
    block_on(issue(w, &cfg, &request(w.now * 1000), &rst, csr_der, principal, &mut entropy))
}

fn token_principal(token: &str) -> Principal {
    Principal { email: "alice@contoso.com".into(), token: Some(token.into()) }
}

fn auth(w: &World, cred: Option<&Credential>) -> Result<Principal, EnrollError> {
    let cfg = config();
    block_on(authenticate(w, &cfg, &request(w.now * 1000), cred, Stage::Check))
}

#[test]
fn a_login_token_enrolls_a_device_through_every_object() {
    let dir = TempDir::new("flow-enroll");
    let w = World::new();
    let token = w.login_token(None);
    let (_, der) = csr(&dir, "dev");
    let doc = enroll(&w, &token_principal(&token), "DEV-1", &der).unwrap();
    let record = w.device("DEV-1").expect("device record written");
    assert_eq!(record.user.as_deref(), Some("alice@contoso.com"));
    assert_eq!(record.status, DeviceStatus::Enrolled);
    assert!(doc.contains(&record.certificate.thumbprint), "the document carries the issued certificate");
    assert_eq!(w.ca.records.borrow()[&record.certificate.serial].device_id, "DEV-1");
    assert_eq!(w.index.borrow()["DEV-1"].status, DeviceStatus::Enrolled);
    assert_eq!(w.tokens.used().values().next().unwrap().device_id.as_deref(), Some("DEV-1"));
    // The token was single use.
    let (_, der2) = csr(&dir, "dev2");
    let again = enroll(&w, &token_principal(&token), "DEV-2", &der2);
    assert!(matches!(again, Err(EnrollError::Authentication(_))), "{again:?}");
    assert!(w.device("DEV-2").is_none());
}

#[test]
fn an_enrollment_asks_the_token_object_once_to_spend_its_token() {
    let dir = TempDir::new("flow-one-token-call");
    let w = World::new();
    let token = w.login_token(None);
    let cfg = config();
    let cred = Credential::UserToken(token.clone().into_bytes());
    w.tokens.calls.borrow_mut().clear();
    // The RST's credential is checked at the edge only (signature, expiry) ...
    let principal =
        block_on(authenticate(&w, &cfg, &request(w.now * 1000), Some(&cred), Stage::Verify)).unwrap();
    assert!(w.tokens.calls.borrow().is_empty());
    // ... and its state once, where the enrollment spends it.
    let (_, der) = csr(&dir, "dev");
    enroll(&w, &principal, "DEV-1", &der).unwrap();
    assert_eq!(*w.tokens.calls.borrow(), ["user:alice@contoso.com"]);
    // Spent, the same credential still passes the edge's check, and is refused where it is spent.
    let principal =
        block_on(authenticate(&w, &cfg, &request(w.now * 1000), Some(&cred), Stage::Verify)).unwrap();
    let (_, der2) = csr(&dir, "dev2");
    assert!(matches!(enroll(&w, &principal, "DEV-2", &der2), Err(EnrollError::Authentication(_))));
    assert!(w.device("DEV-2").is_none());
    // A check of its state (an enrollment token typed on the sign-in page) asks the object.
    assert!(matches!(auth(&w, Some(&cred)), Err(EnrollError::Authentication(_))));
}

#[test]
fn a_bad_csr_is_refused_before_the_token_is_spent() {
    let w = World::new();
    let token = w.login_token(None);
    let r = enroll(&w, &token_principal(&token), "DEV-1", b"not a CSR");
    assert!(matches!(r, Err(EnrollError::Csr(_))), "{r:?}");
    assert!(w.tokens.used().is_empty(), "the token is still good");
    assert_eq!(*w.ca.counter.borrow(), 0);
}

#[test]
fn the_ca_fails_after_the_token_was_spent() {
    let dir = TempDir::new("flow-ca-down");
    let w = World::new();
    let token = w.login_token(None);
    let (_, der) = csr(&dir, "dev");
    w.fail.set(Some(Step::Ca));
    let r = enroll(&w, &token_principal(&token), "DEV-1", &der);
    assert!(matches!(r, Err(EnrollError::Server(_))), "{r:?}");
    assert_eq!(r.unwrap_err().fault_code(), crate::proto::soap::FaultCode::EnrollmentServer);
    // The spend happened (it is atomic in the authority and comes first); nothing else did.
    assert_eq!(w.tokens.used().len(), 1);
    assert!(w.ca.records.borrow().is_empty());
    assert!(w.device("DEV-1").is_none());
    assert!(w.index.borrow().is_empty());
}

#[test]
fn the_device_write_fails_after_the_certificate_was_issued() {
    let dir = TempDir::new("flow-device-down");
    let w = World::new();
    let token = w.login_token(None);
    let (_, der) = csr(&dir, "dev");
    w.fail.set(Some(Step::DeviceEnroll));
    let r = enroll(&w, &token_principal(&token), "DEV-1", &der);
    assert!(matches!(r, Err(EnrollError::Server(_))), "{r:?}");
    // The certificate exists in the CA's records but no device holds it, and the listing
    // never saw the device: a retry with a new token enrolls it cleanly.
    assert_eq!(w.ca.records.borrow().len(), 1);
    assert!(w.device("DEV-1").is_none());
    assert!(w.index.borrow().is_empty());
    w.fail.set(None);
    let retry = w.login_token(None);
    enroll(&w, &token_principal(&retry), "DEV-1", &der).unwrap();
    assert_eq!(w.ca.records.borrow().len(), 2);
    assert!(w.device("DEV-1").is_some());
}

#[test]
fn the_listing_fails_after_the_device_was_written() {
    let dir = TempDir::new("flow-index-down");
    let w = World::new();
    let token = w.login_token(None);
    let (_, der) = csr(&dir, "dev");
    w.fail.set(Some(Step::Index));
    let r = enroll(&w, &token_principal(&token), "DEV-1", &der);
    assert!(matches!(r, Err(EnrollError::Server(_))), "{r:?}");
    // The device object is the source of truth; the listing is behind until the next write.
    assert!(w.device("DEV-1").is_some());
    assert!(w.index.borrow().is_empty());
}

#[test]
fn the_token_authority_down_refuses_with_a_server_fault() {
    let w = World::new();
    let token = w.login_token(None);
    w.fail.set(Some(Step::Tokens));
    let cred = Credential::UserToken(token.into_bytes());
    let r = auth(&w, Some(&cred));
    assert!(matches!(r, Err(EnrollError::Server(_))), "{r:?}");
}

#[test]
fn credentials_are_checked_without_telling_which_users_exist() {
    let w = World::new();
    let cred = |u: &str, p: &str| Credential::UsernameToken { username: u.into(), password: p.into() };
    let ok = auth(&w, Some(&cred(" Alice@Contoso.com ", PASSWORD))).unwrap();
    assert_eq!(ok, Principal { email: "alice@contoso.com".into(), token: None });
    for (u, p) in [("alice@contoso.com", "wrong"), ("bob@contoso.com", PASSWORD)] {
        let before = w.kdf_calls.get();
        let r = auth(&w, Some(&cred(u, p)));
        assert!(matches!(r, Err(EnrollError::Authentication(_))), "{u}");
        assert_eq!(w.kdf_calls.get(), before + 1, "a hash is derived for {u} too");
    }
    // What is not an email at all is refused before anything (its form says nothing of users,
    // and it never becomes a rate-limit key).
    let before = (w.kdf_calls.get(), w.tokens.windows().len());
    assert!(matches!(
        auth(&w, Some(&cred(&"x".repeat(70_000), PASSWORD))),
        Err(EnrollError::Authentication(_))
    ));
    assert_eq!((w.kdf_calls.get(), w.tokens.windows().len()), before);
    assert!(matches!(auth(&w, None), Err(EnrollError::Authentication(_))));
    let garbage = Credential::UserToken(vec![0xff, 0xfe]);
    assert!(matches!(auth(&w, Some(&garbage)), Err(EnrollError::Authentication(_))));
    // A policy request checks a token without spending it.
    let token = w.login_token(None);
    let p = auth(&w, Some(&Credential::UserToken(token.clone().into_bytes()))).unwrap();
    assert_eq!(p.token.as_deref(), Some(token.as_str()));
    assert!(w.tokens.used().is_empty());
}

#[test]
fn a_token_bound_to_another_device_spends_nothing() {
    let dir = TempDir::new("flow-bound");
    let w = World::new();
    let token = w.login_token(Some("DEV-A"));
    let (_, der) = csr(&dir, "dev");
    let r = enroll(&w, &token_principal(&token), "DEV-B", &der);
    assert!(matches!(r, Err(EnrollError::Authentication(_))), "{r:?}");
    assert!(w.tokens.used().is_empty());
    assert!(w.ca.records.borrow().is_empty());
    enroll(&w, &token_principal(&token), "DEV-A", &der).unwrap();
}

/// A ROBO renewal request: the new CSR signed (CMS) with the device's current key.
fn renewal_pkcs7(dir: &TempDir, cert_b64: &str, key: &str, new_csr: &[u8]) -> Vec<u8> {
    let cert = decode_base64(cert_b64).unwrap();
    let cert_pem = dir.write("signer.pem", pki::to_pem("CERTIFICATE", &cert).as_bytes());
    let input = dir.write("new.csr.der", new_csr);
    cms_sign(dir, "renew", &input, &cert_pem, key, &["-nodetach"])
}

fn renew_with(
    w: &World,
    device_id: &str,
    p7: &[u8],
    client_cert: Option<&str>,
) -> Result<String, EnrollError> {
    let cfg = config();
    let rst = rst(device_id, TokenRequest::Pkcs7(p7.to_vec()), RequestType::Renew);
    let req = SoapRequest { client_cert, ..request(w.now * 1000) };
    block_on(renew(w, &cfg, &req, &rst, p7))
}

#[test]
fn renewal_runs_through_the_ca_and_the_device_and_only_once() {
    let dir = TempDir::new("flow-renew");
    let w = World::new();
    let token = w.login_token(None);
    let (key, der) = csr(&dir, "dev");
    enroll(&w, &token_principal(&token), "DEV-1", &der).unwrap();
    let first = w.device("DEV-1").unwrap().certificate;
    let issued_b64 = w.issued.borrow()[&first.thumbprint].clone();
    let (_, new_csr) = csr(&dir, "new");
    let p7 = renewal_pkcs7(&dir, &issued_b64, &key, &new_csr);

    // Another device's id in the request, and a TLS client certificate that is not the
    // signer, are refused before anything is written.
    assert!(matches!(renew_with(&w, "DEV-2", &p7, None), Err(EnrollError::NotEligibleToRenew(_))));
    let wrong_tls = Some("0000000000000000000000000000000000000000");
    assert!(matches!(renew_with(&w, "DEV-1", &p7, wrong_tls), Err(EnrollError::NotEligibleToRenew(_))));
    assert_eq!(w.device("DEV-1").unwrap().certificate, first);

    // The CA is down: the device keeps its certificate, which can still renew later.
    w.fail.set(Some(Step::Ca));
    assert!(matches!(renew_with(&w, "DEV-1", &p7, None), Err(EnrollError::Server(_))));
    assert_eq!(w.device("DEV-1").unwrap().certificate, first);
    w.fail.set(None);

    let doc = renew_with(&w, "DEV-1", &p7, None).unwrap();
    let renewed = w.device("DEV-1").unwrap();
    assert_ne!(renewed.certificate.serial, first.serial);
    assert!(doc.contains(&renewed.certificate.thumbprint));
    assert!(w.ca.records.borrow()[&first.serial].revoked);
    assert_eq!(w.index.borrow()["DEV-1"].certificate_not_after, renewed.certificate.not_after);
    // The answer was lost (or the listing write failed after the commit): the device retries
    // with the certificate it still holds, and gets a new one; the unused one is revoked.
    let retried = renew_with(&w, "DEV-1", &p7, None).unwrap();
    let current = w.device("DEV-1").unwrap().certificate;
    assert!(retried.contains(&current.thumbprint));
    assert!(w.ca.records.borrow()[&renewed.certificate.serial].revoked);
    // Once the current certificate renews itself, the old one can no longer renew.
    let (new_key, _) = (dir.path("new.key"), ());
    let current_b64 = w.issued.borrow()[&current.thumbprint].clone();
    let (_, newer_csr) = csr(&dir, "newer");
    let p7b = renewal_pkcs7(&dir, &current_b64, &new_key, &newer_csr);
    renew_with(&w, "DEV-1", &p7b, None).unwrap();
    assert!(matches!(renew_with(&w, "DEV-1", &p7, None), Err(EnrollError::NotEligibleToRenew(_))));
}

#[test]
fn a_renewal_whose_listing_write_fails_is_still_done() {
    let dir = TempDir::new("flow-renew-index");
    let w = World::new();
    let token = w.login_token(None);
    let (key, der) = csr(&dir, "dev");
    enroll(&w, &token_principal(&token), "DEV-1", &der).unwrap();
    let first = w.device("DEV-1").unwrap().certificate;
    let b64 = w.issued.borrow()[&first.thumbprint].clone();
    let (_, new_csr) = csr(&dir, "new");
    let p7 = renewal_pkcs7(&dir, &b64, &key, &new_csr);
    w.fail.set(Some(Step::Index));
    let doc = renew_with(&w, "DEV-1", &p7, None).unwrap();
    assert!(
        doc.contains(&w.device("DEV-1").unwrap().certificate.thumbprint),
        "the device gets its certificate"
    );
}

#[test]
fn a_retired_device_cannot_renew() {
    let dir = TempDir::new("flow-retired");
    let w = World::new();
    let token = w.login_token(None);
    let (key, der) = csr(&dir, "dev");
    enroll(&w, &token_principal(&token), "DEV-1", &der).unwrap();
    let thumbprint = w.device("DEV-1").unwrap().certificate.thumbprint;
    let cert_b64 = w.issued.borrow()[&thumbprint].clone();
    w.devices.borrow().get("DEV-1").unwrap().record.borrow_mut().as_mut().unwrap().status =
        DeviceStatus::Retired;
    let (_, new_csr) = csr(&dir, "new");
    let p7 = renewal_pkcs7(&dir, &cert_b64, &key, &new_csr);
    assert!(matches!(renew_with(&w, "DEV-1", &p7, None), Err(EnrollError::NotEligibleToRenew(_))));
    assert_eq!(*w.ca.counter.borrow(), 1, "nothing was signed");
}

fn bob() -> Principal {
    Principal { email: "bob@contoso.com".into(), token: None }
}

fn alice() -> Principal {
    Principal { email: "alice@contoso.com".into(), token: None }
}

#[test]
fn another_user_cannot_take_an_enrolled_device_id() {
    let dir = TempDir::new("flow-takeover");
    let w = World::new();
    let (_, der) = csr(&dir, "dev");
    enroll(&w, &alice(), "DEV-1", &der).unwrap();
    let before = w.device("DEV-1").unwrap();
    let signed = *w.ca.counter.borrow();
    // Bob, with a token of his own, claims Alice's DeviceID.
    let bob_token = match w.tokens.call(
        TokenCall::CreateEnrollToken { email: "bob@contoso.com".into(), expires_in_seconds: 600, uses: 1 },
        w.now * 1000,
        &mut Counter(5),
    ) {
        Ok(TokenReply::EnrollTokenCreated { token, .. }) => token,
        other => panic!("{other:?}"),
    };
    let (_, der2) = csr(&dir, "attacker");
    let principal = Principal { email: "bob@contoso.com".into(), token: Some(bob_token) };
    let r = enroll(&w, &principal, "DEV-1", &der2);
    assert!(matches!(r, Err(EnrollError::NotAuthorized(_))), "{r:?}");
    assert_eq!(r.unwrap_err().fault_code(), crate::proto::soap::FaultCode::Authorization);
    assert_eq!(w.device("DEV-1").unwrap(), before, "nothing about the device changed");
    assert_eq!(*w.ca.counter.borrow(), signed, "nothing was signed");
    assert_eq!(w.tokens.etoks().values().next().unwrap().remaining, 1, "Bob's token is not spent");
    assert!(matches!(enroll(&w, &bob(), "DEV-1", &der2), Err(EnrollError::NotAuthorized(_))));
}

#[test]
fn the_same_user_re_enrolls_with_new_credentials_and_the_old_certificate_revoked() {
    let dir = TempDir::new("flow-reenroll");
    let w = World::new();
    let (key, der) = csr(&dir, "dev");
    enroll(&w, &alice(), "DEV-1", &der).unwrap();
    let first = w.device("DEV-1").unwrap().certificate;
    let first_b64 = w.issued.borrow()[&first.thumbprint].clone();
    let old_hash = w.devices.borrow()["DEV-1"].credentials.borrow().clone().unwrap().device_hash_b64;
    w.devices.borrow()["DEV-1"]
        .call(DeviceCall::QueueCommand { request: crate::commands::CommandRequest::Lock }, 0)
        .unwrap();

    enroll(&w, &alice(), "DEV-1", &der).unwrap();
    let second = w.device("DEV-1").unwrap().certificate;
    assert_ne!(second.serial, first.serial);
    let creds = w.devices.borrow()["DEV-1"].credentials.borrow().clone().unwrap();
    assert_ne!(creds.device_hash_b64, old_hash, "the old secret is refused from now on");
    let effects = w.devices.borrow()["DEV-1"].effects.borrow().clone();
    assert!(
        effects.contains(&crate::device::calls::DeviceEffect::Revoke { serials: vec![first.serial.clone()] })
    );
    assert_eq!(w.devices.borrow()["DEV-1"].pending.borrow().len(), 1, "a reset PC keeps its queue");
    // The replaced certificate cannot renew (here the device object's refusal; the CA would
    // refuse too once the revocation is carried out).
    let (_, new_csr) = csr(&dir, "new");
    let p7 = renewal_pkcs7(&dir, &first_b64, &key, &new_csr);
    let r = renew_with(&w, "DEV-1", &p7, None);
    assert!(matches!(r, Err(EnrollError::NotEligibleToRenew(_))), "{r:?}");
}

#[test]
fn a_retired_device_id_enrolls_again_fresh_for_anyone() {
    let dir = TempDir::new("flow-fresh");
    let w = World::new();
    let (_, der) = csr(&dir, "dev");
    enroll(&w, &alice(), "DEV-1", &der).unwrap();
    {
        let devices = w.devices.borrow();
        let d = &devices["DEV-1"];
        d.call(DeviceCall::QueueCommand { request: crate::commands::CommandRequest::Wipe }, 0).unwrap();
        d.call(DeviceCall::Retire, 0).unwrap();
        assert_eq!(d.pending.borrow().len(), 1, "only the Unenroll is left");
    }
    enroll(&w, &bob(), "DEV-1", &der).unwrap();
    let rec = w.device("DEV-1").unwrap();
    assert_eq!((rec.status, rec.user.as_deref()), (DeviceStatus::Enrolled, Some("bob@contoso.com")));
    let devices = w.devices.borrow();
    let d = &devices["DEV-1"];
    assert!(d.pending.borrow().is_empty(), "the new enrollment inherits no queued command");
    assert!(d.commands.borrow().values().all(|c| c.is_done()));
    assert!(!d.mgmt.borrow().as_ref().unwrap().retire_requested);
}

#[test]
fn a_new_device_id_on_known_hardware_supersedes_only_the_same_users_record() {
    let dir = TempDir::new("flow-hw");
    let w = World::new();
    let (_, der) = csr(&dir, "dev");
    let rst_hw = |id: &str| {
        let mut r = rst(id, TokenRequest::Pkcs10(der.clone()), RequestType::Issue);
        r.context.push(("HWDevID".into(), "HW-42".into()));
        r
    };
    let cfg = config();
    let go = |p: &Principal, id: &str| {
        block_on(issue(&w, &cfg, &request(w.now * 1000), &rst_hw(id), &der, p, &mut Counter(9)))
    };
    go(&alice(), "OLD").unwrap();
    go(&bob(), "BOBS").unwrap();
    assert_eq!(w.device("OLD").unwrap().status, DeviceStatus::Enrolled, "another user leaves it alone");
    go(&alice(), "NEW").unwrap();
    // The hardware now points at NEW; OLD was last seen under BOBS, so alice's next one
    // supersedes nothing of bob's.
    assert_eq!(w.device("BOBS").unwrap().status, DeviceStatus::Enrolled);
    go(&alice(), "NEWER").unwrap();
    assert_eq!(w.device("NEW").unwrap().status, DeviceStatus::Superseded);
    assert_eq!(w.device("NEWER").unwrap().status, DeviceStatus::Enrolled);
}

#[test]
fn passwords_are_refused_under_federated_and_limited_under_on_premise() {
    let w = World::new();
    let cred =
        |p: &str| Credential::UsernameToken { username: "alice@contoso.com".into(), password: p.into() };
    let federated = Config::from_lookup(&|_| None).unwrap();
    let r =
        block_on(authenticate(&w, &federated, &request(w.now * 1000), Some(&cred(PASSWORD)), Stage::Check));
    assert!(matches!(r, Err(EnrollError::Authentication(_))), "only tokens under Federated");
    // OnPremise, LOGIN_MAX_FAILURES 3: three wrong guesses, then even the right password waits.
    for _ in 0..3 {
        assert!(auth(&w, Some(&cred("guess"))).is_err());
    }
    let before = w.kdf_calls.get();
    let r = auth(&w, Some(&cred(PASSWORD)));
    assert!(matches!(&r, Err(EnrollError::Authentication(m)) if m.contains("too many")), "{r:?}");
    assert_eq!(w.kdf_calls.get(), before, "no hash is derived while limited");
    // The window ends.
    let later = World { now: w.now + 901, ..World::new() };
    later.tokens.objects.replace(w.tokens.objects.borrow().clone());
    assert!(auth(&later, Some(&cred(PASSWORD))).is_ok());
}

#[test]
fn guesses_in_parallel_are_counted_before_they_are_checked() {
    // Three attempts admitted and not yet answered hold the whole budget (LOGIN_MAX_FAILURES 3):
    // a fourth is refused without a hash, whatever its password.
    let w = World::new();
    let keys = vec!["email:alice@contoso.com".to_string(), "ip:203.0.113.7".to_string()];
    let limit = crate::tokens::RateLimit { max_failures: 3, window_secs: 900 };
    for _ in 0..3 {
        block_on(w.tokens(TokenCall::Attempt { keys: keys.clone(), limit })).unwrap().unwrap();
    }
    let before = w.kdf_calls.get();
    let cred = Credential::UsernameToken { username: "alice@contoso.com".into(), password: PASSWORD.into() };
    assert!(matches!(auth(&w, Some(&cred)), Err(EnrollError::Authentication(m)) if m.contains("too many")));
    assert_eq!(w.kdf_calls.get(), before);
}

#[test]
fn successes_are_not_counted() {
    let w = World::new();
    let cred = Credential::UsernameToken { username: "alice@contoso.com".into(), password: PASSWORD.into() };
    for _ in 0..10 {
        assert!(auth(&w, Some(&cred)).is_ok(), "many enrollments of one user are not limited");
    }
}
