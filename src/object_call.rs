//! The shape every Durable Object operation has in the core. An object decodes one typed call,
//! reads what it needs through a small storage trait, calls the core, commits the core's
//! writes as one batch and encodes the reply. The call, reply and error types of each object
//! are defined next to its rules ([`crate::issuer`], [`crate::tokens::authority`],
//! [`crate::device::calls`]); the wire encoding is the shell's, in one place (`shell::rpc`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A storage or transport failure on the server's side (never the client's fault).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// What one call decided: the reply (or the refusal) and the writes to commit together.
#[derive(Debug)]
pub struct Outcome<R, E, W> {
    pub reply: Result<R, E>,
    pub writes: Vec<W>,
}

impl<R, E, W> Outcome<R, E, W> {
    pub fn reply(reply: R, writes: Vec<W>) -> Self {
        Outcome { reply: Ok(reply), writes }
    }

    pub fn refuse(error: E) -> Self {
        Outcome { reply: Err(error), writes: Vec::new() }
    }
}

/// Runs a future that never waits: the in-memory stores of the native tests answer at once.
#[cfg(test)]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
