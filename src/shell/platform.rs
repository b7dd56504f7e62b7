//! The clock and randomness, read here and nowhere else; the core takes both as arguments.

use crate::context::Entropy;

/// Unix milliseconds (the Worker has no `std::time`).
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// The platform's CSPRNG (`crypto.getRandomValues`).
pub struct Csprng;

impl Entropy for Csprng {
    fn fill(&mut self, out: &mut [u8]) {
        getrandom::getrandom(out).expect("crypto.getRandomValues is available in Workers");
    }
}
