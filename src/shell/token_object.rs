//! The token authority Durable Object: the only place the token-signing key exists. One
//! instance (named "tokens") serves the deployment; its rules are
//! [`crate::tokens::authority`].
//!
//! Storage (JSON text): `hmac_key` (base64 of the 32-byte HMAC-SHA256 key), `used:<jti>`
//! ([`UsedToken`]), `etok:<id>` ([`EnrollTokenRecord`]), `rl:<key>` ([`Window`], keys
//! `email:<email>` or `ip:<address>`), `next_sweep` (unix seconds).

use super::platform::{now_ms, Csprng};
use super::rpc;
use super::storage::{Batch, JsonStorage};
use crate::calls::StoreError;
use crate::tokens::authority::{self, EnrollTokenRecord, TokenCall, TokenStorage, TokenWrite, UsedToken};
use crate::tokens::Window;
use worker::*;

pub const BINDING: &str = "TOKENS";
pub const INSTANCE: &str = "tokens";

const KEY: &str = "hmac_key";
const NEXT_SWEEP: &str = "next_sweep";
const USED: &str = "used:";
const ETOK: &str = "etok:";
const RL: &str = "rl:";

#[durable_object]
pub struct TokenAuthority {
    state: State,
}

struct Store(JsonStorage);

impl TokenStorage for Store {
    async fn key(&self) -> std::result::Result<Option<String>, StoreError> {
        self.0.get(KEY).await
    }
    async fn used(&self, jti: &str) -> std::result::Result<Option<UsedToken>, StoreError> {
        self.0.get(&format!("{USED}{jti}")).await
    }
    async fn enroll_token(&self, id: &str) -> std::result::Result<Option<EnrollTokenRecord>, StoreError> {
        self.0.get(&format!("{ETOK}{id}")).await
    }
    async fn enroll_tokens(&self) -> std::result::Result<Vec<EnrollTokenRecord>, StoreError> {
        Ok(self.0.list(ETOK).await?.into_iter().map(|(_, r)| r).collect())
    }
    async fn window(&self, key: &str) -> std::result::Result<Option<Window>, StoreError> {
        self.0.get(&format!("{RL}{key}")).await
    }
    async fn next_sweep(&self) -> std::result::Result<Option<u64>, StoreError> {
        self.0.get(NEXT_SWEEP).await
    }
    async fn used_tokens(&self) -> std::result::Result<Vec<(String, UsedToken)>, StoreError> {
        self.0.list(USED).await
    }
    async fn windows(&self) -> std::result::Result<Vec<(String, Window)>, StoreError> {
        self.0.list(RL).await
    }
}

impl DurableObject for TokenAuthority {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<TokenCall>(&mut req).await {
            Ok(call) => self.run(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }
}

impl TokenAuthority {
    async fn run(
        &self,
        call: TokenCall,
    ) -> std::result::Result<std::result::Result<authority::TokenReply, authority::TokenCallError>, StoreError>
    {
        let store = Store(JsonStorage(self.state.storage()));
        let out = authority::handle(&store, call, now_ms(), &mut Csprng).await?;
        let mut batch = Batch::default();
        for w in &out.writes {
            match w {
                TokenWrite::Key(k) => batch.put(KEY, k)?,
                TokenWrite::Used(jti, u) => batch.put(&format!("{USED}{jti}"), u)?,
                TokenWrite::DeleteUsed(jti) => batch.delete(&format!("{USED}{jti}")),
                TokenWrite::EnrollToken(r) => batch.put(&format!("{ETOK}{}", r.id), r)?,
                TokenWrite::Window(k, w) => batch.put(&format!("{RL}{k}"), w)?,
                TokenWrite::DeleteWindow(k) => batch.delete(&format!("{RL}{k}")),
                TokenWrite::NextSweep(t) => batch.put(NEXT_SWEEP, t)?,
            }
        }
        store.0.commit(batch).await?;
        Ok(out.reply)
    }
}
