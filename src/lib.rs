//! edgemdm: a Windows MDM server for Cloudflare Workers.
//!
//! The pure core (no `worker` imports, tested natively with `cargo test`):
//! - [`xml`]: namespace-aware XML tree and writer
//! - [`proto`]: the wire protocols (SOAP/WS-Trust, discovery, XCEP, WSTEP, provisioning doc)
//! - [`pki`]: CSR verification, certificate building, renewal PKCS#7
//! - [`enrollment`], [`ca`], [`users`], [`config`], [`http`]: the services' rules
//! - [`tokens`], [`login`]: enrollment tokens and the Federated sign-in page
//!
//! The Worker shell, compiled for wasm32 only: [`edge`] (HTTP adapters) and [`objects`]
//! (Durable Objects and KV, the only code that touches storage).

pub mod ca;
pub mod config;
pub mod enrollment;
pub mod http;
pub mod login;
pub mod management;
pub mod pki;
pub mod proto;
pub mod time;
pub mod tokens;
pub mod users;
pub mod xml;

#[cfg(target_arch = "wasm32")]
pub mod edge;
#[cfg(target_arch = "wasm32")]
pub mod objects;
