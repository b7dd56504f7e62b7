//! The token authority Durable Object: the token-signing key and the state of tokens that must
//! be consistent. Instances ([`crate::tokens::client`]): the root (named "tokens") holds the
//! key and which user holds each enrollment token; `user:<email>` a user's tokens;
//! `rl:<key>` one sign-in rate-limit window. Its rules are [`crate::tokens::authority`].
//!
//! Storage (JSON text): `hmac_key` (base64 of the 32-byte HMAC-SHA256 key, root),
//! `hold:<id>` (the email of the user whose instance holds enrollment token `<id>`, root), `used:<jti>`
//! ([`UsedToken`]), `etok:<id>` ([`EnrollTokenRecord`]), `rl:<key>` ([`Window`], keys
//! `email:<email>` or `ip:<address>`), `next_sweep` (unix seconds), `urev:<email>` (when the
//! user's tokens were revoked, unix ms), `exp:<at>:u:<jti>` / `exp:<at>:w:<key>` (the expiry
//! index the sweep reads as one bounded range).

use super::platform::{now_ms, Csprng};
use super::rpc;
use super::storage::{store_error, Batch, JsonStorage};
use crate::object_call::StoreError;
use crate::tokens::authority::{
    self, EnrollTokenRecord, Expiring, Expiry, ObjectCall, TokenStorage, TokenWrite, UsedToken,
};
use crate::tokens::Window;
use worker::*;

pub const BINDING: &str = "TOKENS";

const KEY: &str = "hmac_key";
const NEXT_SWEEP: &str = "next_sweep";
const USED: &str = "used:";
const ETOK: &str = "etok:";
const RL: &str = "rl:";
const UREV: &str = "urev:";
const EXP: &str = "exp:";
const HOLD: &str = "hold:";

/// `exp:<at, 20 digits>:u:<jti>` or `exp:<at>:w:<key>`: the expiry index.
fn expiry_key(e: &Expiry) -> String {
    match &e.target {
        Expiring::Used(jti) => format!("{EXP}{:020}:u:{jti}", e.at),
        Expiring::Window(k) => format!("{EXP}{:020}:w:{k}", e.at),
    }
}

fn expiry_from_key(key: &str) -> Option<Expiry> {
    let rest = key.strip_prefix(EXP)?;
    let (at, rest) = rest.split_once(':')?;
    let at = at.parse().ok()?;
    let target = match rest.split_once(':')? {
        ("u", jti) => Expiring::Used(jti.to_string()),
        ("w", k) => Expiring::Window(k.to_string()),
        _ => return None,
    };
    Some(Expiry { at, target })
}

#[durable_object(alarm)]
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
    async fn user_revoked(&self, email: &str) -> std::result::Result<Option<u64>, StoreError> {
        self.0.get(&format!("{UREV}{email}")).await
    }
    async fn holder(&self, id: &str) -> std::result::Result<Option<String>, StoreError> {
        self.0.get(&format!("{HOLD}{id}")).await
    }
    async fn holders(&self) -> std::result::Result<Vec<String>, StoreError> {
        let mut v: Vec<String> = self.0.list(HOLD).await?.into_iter().map(|(_, e)| e).collect();
        crate::sorting::sort(&mut v);
        v.dedup();
        Ok(v)
    }
    async fn next_expiry_after(&self, now: u64) -> std::result::Result<Option<u64>, StoreError> {
        let start = format!("{EXP}{:020}~", now);
        let opts = ListOptions::new().start(&start).prefix(EXP).limit(1);
        let map = self.0 .0.list_with_options(opts).await.map_err(store_error)?;
        let mut first = None;
        map.for_each(&mut |_, key| {
            if first.is_none() {
                first = key.as_string().and_then(|k| expiry_from_key(&k)).map(|e| e.at);
            }
        });
        Ok(first)
    }
    async fn expired(&self, now: u64, limit: usize) -> std::result::Result<Vec<Expiry>, StoreError> {
        // Keys sort by their zero-padded time: everything due is one bounded range.
        let end = format!("{EXP}{:020}~", now);
        let opts = ListOptions::new().start(EXP).end(&end).limit(limit);
        let map = self.0 .0.list_with_options(opts).await.map_err(store_error)?;
        let mut out = Vec::new();
        map.for_each(&mut |_, key| {
            if let Some(e) = key.as_string().and_then(|k| expiry_from_key(&k)) {
                out.push(e);
            }
        });
        Ok(out)
    }
}

impl DurableObject for TokenAuthority {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<ObjectCall>(&mut req).await {
            Ok(call) => self.run(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }

    /// Deletes what ended; asks to run again when the next entry is due.
    async fn alarm(&self) -> Result<Response> {
        let answer = self.run(ObjectCall::Sweep).await;
        if let Ok(Ok(authority::TokenReply::Swept { next_due: Some(at) })) = &answer {
            self.wake_at(*at).await?;
        }
        rpc::encode(answer)
    }
}

impl TokenAuthority {
    async fn run(
        &self,
        call: ObjectCall,
    ) -> std::result::Result<std::result::Result<authority::TokenReply, authority::TokenCallError>, StoreError>
    {
        let store = Store(JsonStorage(self.state.storage()));
        let out = Box::pin(authority::handle(&store, call, now_ms(), &mut Csprng)).await?;
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
                TokenWrite::DeleteNextSweep => batch.delete(NEXT_SWEEP),
                TokenWrite::UserRevoked(email, at) => batch.put(&format!("{UREV}{email}"), at)?,
                TokenWrite::Expiry(e) => batch.put(&expiry_key(e), &e.at)?,
                TokenWrite::DeleteExpiry(e) => batch.delete(&expiry_key(e)),
                TokenWrite::Holder(id, email) => batch.put(&format!("{HOLD}{id}"), email)?,
            }
        }
        store.0.commit(batch).await?;
        // Whatever gets an expiry also gets the alarm that deletes it when due.
        let due = out
            .writes
            .iter()
            .filter_map(|w| if let TokenWrite::Expiry(e) = w { Some(e.at) } else { None })
            .min();
        if let Some(at) = due {
            self.wake_at(at).await?;
        }
        Ok(out.reply)
    }

    /// Rings the alarm by `at` (Unix seconds; a second after, so the entry is due).
    async fn wake_at(&self, at: u64) -> std::result::Result<(), StoreError> {
        JsonStorage(self.state.storage()).wake_by((at as i64 + 1) * 1000).await
    }
}
