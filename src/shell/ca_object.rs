//! The CA Durable Object: the only place the CA key exists. One instance (named "ca") serves
//! the deployment. It loads its key (generating it on the first call, never exporting it),
//! runs [`crate::issuer::handle`] and commits the writes. The parsed key is kept in memory for
//! the object's lifetime.
//!
//! Storage (JSON text): `key` (base64 PKCS#8), `cert` (base64 DER), `serial_counter`,
//! `issued:<serial>` ([`IssuanceRecord`]).

use super::platform::{now_ms, Csprng};
use super::rpc;
use super::storage::{Batch, JsonStorage};
use crate::calls::StoreError;
use crate::issuer::{self, Ca, CaCall, CaContext, CaStorage, CaWrite, IssuanceRecord, StoredCa};
use std::cell::RefCell;
use worker::*;

pub const BINDING: &str = "CA";
pub const INSTANCE: &str = "ca";

const KEY: &str = "key";
const CERT: &str = "cert";
const COUNTER: &str = "serial_counter";

fn issued_key(serial: &str) -> String {
    format!("issued:{serial}")
}

#[durable_object]
pub struct CertificateAuthority {
    state: State,
    ca: RefCell<Option<Ca>>,
}

struct Records<'a>(&'a JsonStorage);

impl CaStorage for Records<'_> {
    async fn record(&self, serial: &str) -> std::result::Result<Option<IssuanceRecord>, StoreError> {
        self.0.get(&issued_key(serial)).await
    }
}

impl DurableObject for CertificateAuthority {
    fn new(state: State, _env: Env) -> Self {
        Self { state, ca: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<CaCall>(&mut req).await {
            Ok(call) => self.run(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }
}

impl CertificateAuthority {
    fn storage(&self) -> JsonStorage {
        JsonStorage(self.state.storage())
    }

    /// The CA, created on first use. Reads and writes happen under the object's input gate,
    /// so two first calls cannot both create a key.
    async fn ca(&self) -> std::result::Result<Ca, StoreError> {
        if let Some(ca) = self.ca.borrow().as_ref() {
            return Ok(ca.clone());
        }
        let storage = self.storage();
        let ca = match (storage.get::<String>(KEY).await?, storage.get::<String>(CERT).await?) {
            (Some(key_pkcs8_b64), Some(cert_b64)) => Ca::load(&StoredCa { key_pkcs8_b64, cert_b64 })?,
            (None, _) => {
                let (ca, stored) = Ca::create(now_ms() / 1000, &mut Csprng)?;
                let mut batch = Batch::default();
                batch.put(KEY, &stored.key_pkcs8_b64)?;
                batch.put(CERT, &stored.cert_b64)?;
                batch.put(COUNTER, &0u64)?;
                storage.commit(batch).await?;
                ca
            }
            (Some(_), None) => return Err(StoreError("CA certificate missing".into())),
        };
        *self.ca.borrow_mut() = Some(ca.clone());
        Ok(ca)
    }

    async fn run(
        &self,
        call: CaCall,
    ) -> std::result::Result<std::result::Result<issuer::CaReply, issuer::CaError>, StoreError> {
        let ca = self.ca().await?;
        let storage = self.storage();
        let counter = storage.get::<u64>(COUNTER).await?.unwrap_or(0);
        let ctx = CaContext { ca: &ca, counter, now: now_ms() / 1000, entropy: &mut Csprng };
        let out = issuer::handle(&Records(&storage), ctx, call).await?;
        let mut batch = Batch::default();
        for w in &out.writes {
            match w {
                CaWrite::Counter(c) => batch.put(COUNTER, c)?,
                CaWrite::Record(r) => batch.put(&issued_key(&r.serial), r)?,
            }
        }
        storage.commit(batch).await?;
        Ok(out.reply)
    }
}
