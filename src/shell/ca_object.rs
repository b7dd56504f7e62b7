//! The CA Durable Object: the only place the CA key exists. One instance (named "ca") serves
//! the deployment. It loads its key (generating it on the first call, never exporting it),
//! runs [`crate::issuer::handle`] and commits the writes. The key is imported into WebCrypto
//! once per object instance, as a non-extractable `CryptoKey`, and kept in memory with the
//! certificate for the object's lifetime; so is the serial counter, which only this object
//! writes (it is read from storage once, and updated in memory after each commit).
//!
//! Storage (JSON text): `key` (base64 PKCS#8), `cert` (base64 DER), `serial_counter`,
//! `issued:<serial>` ([`IssuanceRecord`]).

use super::platform::{now_ms, Csprng};
use super::rpc;
use super::storage::{Batch, JsonStorage};
use super::webcrypto::{WebCrypto, WebKey};
use crate::issuer::{self, Ca, CaCall, CaContext, CaStorage, CaWrite, IssuanceRecord, StoredCa};
use crate::object_call::StoreError;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::*;

pub const BINDING: &str = "CA";
pub const INSTANCE: &str = "ca";

const KEY: &str = "key";
const CERT: &str = "cert";
const COUNTER: &str = "serial_counter";

fn issued_key(serial: &str) -> String {
    format!("issued:{serial}")
}

#[durable_object(fetch)]
pub struct CertificateAuthority {
    state: State,
    ca: RefCell<Option<Rc<Ca<WebKey>>>>,
    /// The highest serial counter value handed to a call, once read from storage.
    counter: Cell<Option<u64>>,
}

struct Records<'a>(&'a JsonStorage);

impl CaStorage for Records<'_> {
    async fn record(&self, serial: &str) -> std::result::Result<Option<IssuanceRecord>, StoreError> {
        self.0.get(&issued_key(serial)).await
    }
}

impl DurableObject for CertificateAuthority {
    fn new(state: State, _env: Env) -> Self {
        Self { state, ca: RefCell::new(None), counter: Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<CaCall>(&mut req).await {
            Ok(call) => self.run(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }
}

/// The stored CA, or a new one stored before it is used.
async fn load_or_create(storage: JsonStorage) -> std::result::Result<Ca<WebKey>, StoreError> {
    match (storage.get::<String>(KEY).await?, storage.get::<String>(CERT).await?) {
        (Some(key_pkcs8_b64), Some(cert_b64)) => {
            Ca::load(&WebCrypto, &StoredCa { key_pkcs8_b64, cert_b64 }).await
        }
        (None, _) => {
            let (ca, stored) = Ca::create(&WebCrypto, now_ms() / 1000, &mut Csprng).await?;
            let mut batch = Batch::default();
            batch.put(KEY, &stored.key_pkcs8_b64)?;
            batch.put(CERT, &stored.cert_b64)?;
            batch.put(COUNTER, &0u64)?;
            storage.commit(batch).await?;
            Ok(ca)
        }
        (Some(_), None) => Err(StoreError("CA certificate missing".into())),
    }
}

impl CertificateAuthority {
    fn storage(&self) -> JsonStorage {
        JsonStorage(self.state.storage())
    }

    /// The CA, loaded once per instance and created on first use. WebCrypto's promises are not
    /// storage I/O, so the input gate does not hold other calls back while they are awaited:
    /// loading runs under `blockConcurrencyWhile`, so that two first calls cannot both create a
    /// key.
    async fn ca(&self) -> std::result::Result<Rc<Ca<WebKey>>, StoreError> {
        if let Some(ca) = self.ca.borrow().as_ref() {
            return Ok(ca.clone());
        }
        let storage = self.storage();
        let loaded = self
            .state
            .block_concurrency_while(async move { Ok(load_or_create(storage).await) })
            .await
            .map_err(|e| StoreError(e.to_string()))??;
        let ca = Rc::new(loaded);
        *self.ca.borrow_mut() = Some(ca.clone());
        Ok(ca)
    }

    /// The last serial counter value allocated; for a call that allocates one, the next value
    /// is reserved for it before anything else is awaited: calls that overlap while one awaits
    /// WebCrypto never get the same value. Storage keeps the highest value allocated (a call
    /// that fails leaves a gap).
    async fn allocate(&self, storage: &JsonStorage, reserve: bool) -> std::result::Result<u64, StoreError> {
        let last = match self.counter.get() {
            Some(c) => c,
            None => {
                let stored = storage.get::<u64>(COUNTER).await?.unwrap_or(0);
                // Another call may have read it meanwhile and allocated from it.
                self.counter.get().unwrap_or(stored)
            }
        };
        self.counter.set(Some(if reserve { last + 1 } else { last }));
        Ok(last)
    }

    async fn run(
        &self,
        call: CaCall,
    ) -> std::result::Result<std::result::Result<issuer::CaReply, issuer::CaError>, StoreError> {
        let ca = self.ca().await?;
        let storage = self.storage();
        let counter = self.allocate(&storage, call.allocates_serial()).await?;
        let ctx =
            CaContext { signer: &WebCrypto, ca: &ca, counter, now: now_ms() / 1000, entropy: &mut Csprng };
        let out = Box::pin(issuer::handle(&Records(&storage), ctx, call)).await?;
        let mut batch = Batch::default();
        for w in &out.writes {
            match w {
                CaWrite::Counter(c) => batch.put(COUNTER, &self.counter.get().unwrap_or(*c).max(*c))?,
                CaWrite::Record(r) => batch.put(&issued_key(&r.serial), r)?,
            }
        }
        storage.commit(batch).await?;
        Ok(out.reply)
    }
}
