//! The admin directory Durable Object: admin accounts, console sessions and API tokens. One
//! instance (named "admins"); its rules are [`crate::admins`].
//!
//! Storage (JSON text): `admin:<email>` ([`AdminRecord`]), `ses:<id>` ([`SessionRecord`]),
//! `tok:<id>` ([`ApiTokenRecord`]). Secrets are stored as their SHA-256 only.

use super::platform::{now_ms, Csprng};
use super::rpc;
use super::storage::{Batch, JsonStorage};
use crate::admins::{
    self, AdminCall, AdminError, AdminRecord, AdminReply, AdminStorage, AdminWrite, ApiTokenRecord,
    SessionRecord,
};
use crate::object_call::StoreError;
use worker::*;

pub const BINDING: &str = "ADMINS";
pub const INSTANCE: &str = "admins";

const ADMIN: &str = "admin:";
const SESSION: &str = "ses:";
const TOKEN: &str = "tok:";

#[durable_object(fetch)]
pub struct AdminDirectory {
    state: State,
}

struct Store(JsonStorage);

impl AdminStorage for Store {
    async fn admin(&self, email: &str) -> std::result::Result<Option<AdminRecord>, StoreError> {
        self.0.get(&format!("{ADMIN}{email}")).await
    }
    async fn admins(&self) -> std::result::Result<Vec<AdminRecord>, StoreError> {
        Ok(self.0.list(ADMIN).await?.into_iter().map(|(_, a)| a).collect())
    }
    async fn session(&self, id: &str) -> std::result::Result<Option<SessionRecord>, StoreError> {
        self.0.get(&format!("{SESSION}{id}")).await
    }
    async fn sessions(&self) -> std::result::Result<Vec<SessionRecord>, StoreError> {
        Ok(self.0.list(SESSION).await?.into_iter().map(|(_, s)| s).collect())
    }
    async fn token(&self, id: &str) -> std::result::Result<Option<ApiTokenRecord>, StoreError> {
        self.0.get(&format!("{TOKEN}{id}")).await
    }
    async fn tokens(&self) -> std::result::Result<Vec<ApiTokenRecord>, StoreError> {
        Ok(self.0.list(TOKEN).await?.into_iter().map(|(_, t)| t).collect())
    }
}

impl DurableObject for AdminDirectory {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<AdminCall>(&mut req).await {
            Ok(call) => self.run(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }
}

impl AdminDirectory {
    async fn run(
        &self,
        call: AdminCall,
    ) -> std::result::Result<std::result::Result<AdminReply, AdminError>, StoreError> {
        let store = Store(JsonStorage(self.state.storage()));
        let out = Box::pin(admins::handle(&store, call, now_ms(), &mut Csprng)).await?;
        let mut batch = Batch::default();
        for w in &out.writes {
            match w {
                AdminWrite::Admin(a) => batch.put(&format!("{ADMIN}{}", a.email), a)?,
                AdminWrite::DeleteAdmin(e) => batch.delete(&format!("{ADMIN}{e}")),
                AdminWrite::Session(s) => batch.put(&format!("{SESSION}{}", s.id), s)?,
                AdminWrite::DeleteSession(id) => batch.delete(&format!("{SESSION}{id}")),
                AdminWrite::Token(t) => batch.put(&format!("{TOKEN}{}", t.id), t)?,
                AdminWrite::DeleteToken(id) => batch.delete(&format!("{TOKEN}{id}")),
            }
        }
        store.0.commit(batch).await?;
        Ok(out.reply)
    }
}
