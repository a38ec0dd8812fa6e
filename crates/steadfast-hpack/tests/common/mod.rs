//! Shared by the HPACK integration tests: the workspace's seeded PRNG, with the
//! HPACK-flavoured draws these tests need.
#![allow(dead_code, unreachable_pub)]

/// The workspace's test PRNG (`steadfast_testkit::Rng`), with `usize` draws.
pub struct Rng(steadfast_testkit::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(steadfast_testkit::Rng::new(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0.index(n)
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.0.chance(percent as u64)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *self.0.pick_ref(items)
    }

    pub fn hex_id(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }

    pub fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len())]))
            .collect()
    }

    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0.pick_ref(items)
    }
}
