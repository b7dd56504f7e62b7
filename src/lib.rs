//! edgemdm: a Windows MDM server for Cloudflare Workers.
//!
//! `xml`, `proto` and `pki` are the pure core (no `worker` imports, tested natively);
//! `edge` and `objects` are the Worker shell, compiled for wasm32 only.

pub mod xml;
pub mod proto;
