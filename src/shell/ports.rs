//! The core's traits over the platform: the token authority, admin directory, CA, device and
//! profile catalogue objects through their typed calls, KV, and WebCrypto (PBKDF2, signature verification).

use super::{
    admin_object, ca_object, device_object, kv::Kv, platform, profile_catalog, rpc, storage::store_error,
    token_object, webcrypto,
};
use crate::admins::{AdminCall, AdminError, AdminReply, Admins};
use crate::device::calls::{DeviceCall, DeviceError, DeviceReply};
use crate::device::DeviceIndexEntry;
use crate::enroll::flow::{Authority, Devices, Issuer};
use crate::issuer::{CaCall, CaError, CaReply};
use crate::object_call::StoreError;
use crate::pki::provider::{Hash, RsaPublicKey};
use crate::pki::{PkiError, Verifier};
use crate::profiles::catalog::{Catalog, CatalogCall, CatalogError, CatalogReply, KnownRev};
use crate::tokens::authority::{ObjectCall, TokenCall, TokenCallError, TokenReply};
use crate::tokens::client::{self, TokenObjects};
use crate::users::{Directory, Kdf, UserRecord};
use std::cell::OnceCell;
use worker::{Env, Stub};

/// The platform as the core sees it, for one request.
pub struct EdgePorts<'a> {
    env: &'a Env,
    kv: OnceCell<Kv>,
}

impl<'a> EdgePorts<'a> {
    pub fn new(env: &'a Env) -> Self {
        EdgePorts { env, kv: OnceCell::new() }
    }

    pub fn kv(&self) -> Result<&Kv, StoreError> {
        if self.kv.get().is_none() {
            let _ = self.kv.set(Kv::open(self.env)?);
        }
        Ok(self.kv.get().expect("set above"))
    }

    pub fn index(&self) -> Result<super::index::Index, StoreError> {
        super::index::Index::open(self.env)
    }

    fn stub(&self, binding: &str, name: &str) -> Result<Stub, StoreError> {
        self.env.durable_object(binding).and_then(|ns| ns.get_by_name(name)).map_err(store_error)
    }
}

thread_local! {
    /// The token-signing key, read from the root token object once per isolate: tokens are
    /// signed and checked here without a call.
    static TOKEN_KEY: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

impl TokenObjects for EdgePorts<'_> {
    async fn token_object(
        &self,
        instance: &str,
        call: ObjectCall,
    ) -> Result<Result<TokenReply, TokenCallError>, StoreError> {
        rpc::call(&self.stub(token_object::BINDING, instance)?, &call).await
    }

    fn kept_key(&self) -> Option<Vec<u8>> {
        TOKEN_KEY.with(|k| k.borrow().clone())
    }

    fn keep_key(&self, key: &[u8]) {
        TOKEN_KEY.with(|k| *k.borrow_mut() = Some(key.to_vec()));
    }
}

impl Authority for EdgePorts<'_> {
    async fn tokens(&self, call: TokenCall) -> Result<Result<TokenReply, TokenCallError>, StoreError> {
        client::call(self, call, platform::now_ms(), &mut platform::Csprng).await
    }
}

impl Admins for EdgePorts<'_> {
    async fn admins(&self, call: AdminCall) -> Result<Result<AdminReply, AdminError>, StoreError> {
        rpc::call(&self.stub(admin_object::BINDING, admin_object::INSTANCE)?, &call).await
    }
}

impl Issuer for EdgePorts<'_> {
    async fn ca(&self, call: CaCall) -> Result<Result<CaReply, CaError>, StoreError> {
        rpc::call(&self.stub(ca_object::BINDING, ca_object::INSTANCE)?, &call).await
    }
}

impl Devices for EdgePorts<'_> {
    async fn device(
        &self,
        device_id: &str,
        call: DeviceCall,
    ) -> Result<Result<DeviceReply, DeviceError>, StoreError> {
        rpc::call(&self.stub(device_object::BINDING, device_id)?, &call).await
    }
}

thread_local! {
    /// The catalogue revision this isolate last learned ([`KnownRev`]).
    static CATALOG_REV: std::cell::Cell<Option<KnownRev>> = const { std::cell::Cell::new(None) };
}

impl Catalog for EdgePorts<'_> {
    async fn catalog(&self, call: CatalogCall) -> Result<Result<CatalogReply, CatalogError>, StoreError> {
        let now = platform::now_ms();
        if let Some(reply) = KnownRev::answer(CATALOG_REV.get(), &call, now) {
            return Ok(Ok(reply));
        }
        let answer = rpc::call(&self.stub(profile_catalog::BINDING, profile_catalog::INSTANCE)?, &call).await;
        let known = match &answer {
            Ok(Ok(reply)) => KnownRev::after(CATALOG_REV.get(), &call, reply, now),
            // A change whose answer did not arrive may have been made.
            _ => None,
        };
        CATALOG_REV.set(known);
        answer
    }
}

impl Directory for EdgePorts<'_> {
    async fn user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.kv()?.user(email).await
    }

    async fn put_device(&self, entry: &DeviceIndexEntry) -> Result<(), StoreError> {
        self.kv()?.put_device(entry).await
    }

    async fn hardware(&self, hw_dev_id: &str) -> Result<Option<String>, StoreError> {
        self.kv()?.hardware(hw_dev_id).await
    }

    async fn put_hardware(&self, hw_dev_id: &str, device_id: &str) -> Result<(), StoreError> {
        self.kv()?.put_hardware(hw_dev_id, device_id).await
    }
}

impl Kdf for EdgePorts<'_> {
    async fn pbkdf2_sha256(
        &self,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Vec<u8>, StoreError> {
        webcrypto::pbkdf2_sha256(password, salt, iterations).await
    }
}

impl Verifier for EdgePorts<'_> {
    async fn verify_rsa_pkcs1v15(
        &self,
        key: &RsaPublicKey,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        webcrypto::WebCrypto.verify_rsa_pkcs1v15(key, hash, message, signature).await
    }

    async fn verify_p256_sha256(
        &self,
        spki_der: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        webcrypto::WebCrypto.verify_p256_sha256(spki_der, message, signature).await
    }
}
