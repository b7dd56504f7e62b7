//! edgemdm: a Windows MDM server for Cloudflare Workers.
//!
//! The pure core (no `worker` imports, tested natively with `cargo test`):
//! - wire formats: [`xml`] (namespace-aware tree and writer), [`proto`] (SOAP/WS-Trust,
//!   discovery, XCEP, WSTEP, the provisioning document, OMA-DM SyncML), [`pki`] (CSR
//!   verification, certificates, renewal PKCS#7), [`codec`] (hex, base64), [`time`], [`http`]
//! - rules, each with its object's typed calls: [`enroll`] (the enrollment endpoints and the
//!   enrollment and renewal flows), [`issuer`] (the CA), [`tokens`] (token format and the
//!   token authority), [`device`] (device records, check-ins, retire), [`commands`] (the
//!   admin's commands and the queue), [`profiles`] (configuration profiles: the catalogue and
//!   the per-device reconciliation), [`signin`] (the Federated sign-in page), [`users`]
//! - what every rule is handed: [`config`], [`context`] (randomness), [`object_call`] (the shape of
//!   an object call)
//!
//! The Worker shell, compiled for wasm32 only: [`shell`] (routing, HTTP adapters, the Durable
//! Objects, KV, WebCrypto, the clock and randomness). It decodes, loads, calls the core,
//! commits and encodes; it decides nothing.

pub mod admins;
pub mod codec;
pub mod commands;
pub mod config;
pub mod context;
pub mod device;
pub mod enroll;
pub mod fleet;
pub mod http;
pub mod issuer;
pub mod object_call;
pub mod pki;
pub mod profiles;
pub mod proto;
pub mod signin;
pub mod sorting;
pub mod time;
pub mod tokens;
pub mod users;
pub mod xml;

#[cfg(target_arch = "wasm32")]
pub mod shell;
