//! The fleet index in D1 (binding `INDEX`): runs the statements [`crate::fleet`] builds. Tables
//! are in `migrations/`, documented in the README.

use crate::fleet::{Sql, Statement};
use crate::object_call::StoreError;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

pub const BINDING: &str = "INDEX";

fn index_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("fleet index: {e}"))
}

/// The database, and whether the benchmark's row counts are kept.
pub struct Index(D1Database, bool);

/// D1 bills rows read and written as its own result metadata reports them (a row's index
/// entries included); the benchmark's cost model reads these. Read only when the counts are
/// reported: decoding the metadata object was 3% of a check-in in the benchmark's V8 profile.
fn count_rows(index: &Index, r: &worker::D1Result) {
    if !index.1 {
        return;
    }
    if let Ok(Some(meta)) = r.meta() {
        super::metrics::add(|c| {
            c.index_rows_read += meta.rows_read.unwrap_or(0) as u64;
            c.index_rows_written += meta.rows_written.unwrap_or(0) as u64;
        });
    }
}

impl Index {
    pub fn open(env: &Env) -> Result<Index, StoreError> {
        let db = env.d1(BINDING).map_err(index_error)?;
        Ok(Index(db, super::metrics::reporting(env)))
    }

    fn prepare(&self, s: &Statement) -> Result<D1PreparedStatement, StoreError> {
        let params: Vec<JsValue> = s
            .params
            .iter()
            .map(|p| match p {
                Sql::Text(t) => JsValue::from_str(t),
                Sql::Int(n) => JsValue::from_f64(*n as f64),
                Sql::Null => JsValue::NULL,
            })
            .collect();
        self.0.prepare(&s.sql).bind(&params).map_err(index_error)
    }

    /// Runs the statements as one transaction (a D1 batch).
    pub async fn write(&self, statements: &[Statement]) -> Result<(), StoreError> {
        if statements.is_empty() {
            return Ok(());
        }
        let prepared = statements.iter().map(|s| self.prepare(s)).collect::<Result<Vec<_>, _>>()?;
        super::metrics::add(|c| c.index_writes += statements.len() as u64);
        for r in self.0.batch(prepared).await.map_err(index_error)? {
            if let Some(e) = r.error() {
                return Err(index_error(e));
            }
            count_rows(self, &r);
        }
        Ok(())
    }

    /// The rows of one query.
    pub async fn rows<T: DeserializeOwned>(&self, s: &Statement) -> Result<Vec<T>, StoreError> {
        super::metrics::add(|c| c.index_reads += 1);
        let result = self.prepare(s)?.all().await.map_err(index_error)?;
        if let Some(e) = result.error() {
            return Err(index_error(e));
        }
        count_rows(self, &result);
        result.results().map_err(index_error)
    }

    /// The rows of several queries, read in one round trip.
    pub async fn batch_rows<T: DeserializeOwned>(
        &self,
        statements: &[Statement],
    ) -> Result<Vec<Vec<T>>, StoreError> {
        let prepared = statements.iter().map(|s| self.prepare(s)).collect::<Result<Vec<_>, _>>()?;
        super::metrics::add(|c| c.index_reads += statements.len() as u64);
        let mut out = Vec::new();
        for r in self.0.batch(prepared).await.map_err(index_error)? {
            if let Some(e) = r.error() {
                return Err(index_error(e));
            }
            count_rows(self, &r);
            out.push(r.results().map_err(index_error)?);
        }
        Ok(out)
    }
}
