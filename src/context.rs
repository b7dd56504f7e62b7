//! What the core takes from its surroundings instead of reading it itself: randomness (and the
//! time, always passed as an argument: `now` in Unix seconds or milliseconds, named so). The
//! shell reads both in one place (`shell::platform`); native tests pass fixed values, so every
//! rule runs the same way twice.

/// A source of random bytes: the platform's CSPRNG in the Worker, a fixed sequence in tests.
pub trait Entropy {
    fn fill(&mut self, out: &mut [u8]);

    fn bytes<const N: usize>(&mut self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

/// Deterministic "randomness" for tests: a counter, so two draws always differ.
#[cfg(test)]
pub struct Counter(pub u64);

#[cfg(test)]
impl Entropy for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 += 1;
            let b = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}
