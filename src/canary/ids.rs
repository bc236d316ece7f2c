//! Dense integer codes for text ids, in a hash table built for millions of them (the decision
//! ids the outcomes refer to). Each slot is 8 bytes, 32 bits of the key's hash and its code;
//! the table is at most half full and probed linearly. Keys are hashed and looked up in runs,
//! each slot prefetched a few keys ahead: in a table far larger than the caches a lookup is
//! one cache miss and little else, and this way the misses overlap instead of queueing.
//! Codes are given in order of first insertion, whatever the hash (the first AHEAD keys of a
//! run are not prefetched).

use std::hash::BuildHasher;

use polars::prelude::PlRandomState;

/// How many keys ahead a slot is prefetched.
const AHEAD: usize = 16;
const EMPTY: u64 = 0;
const HASH_BITS: u64 = !0xffff_ffff;

pub(super) struct Ids<'a> {
    /// `EMPTY`, or the hash's high 32 bits and code + 1.
    slots: Vec<u64>,
    mask: usize,
    keys: Vec<&'a str>,
    state: PlRandomState,
}

impl<'a> Ids<'a> {
    /// A table that holds `n` keys without growing.
    pub(super) fn with_capacity(n: usize) -> Self {
        let size = (n.max(8) * 2).next_power_of_two();
        Ids {
            slots: vec![EMPTY; size],
            mask: size - 1,
            keys: Vec::with_capacity(n),
            state: PlRandomState::default(),
        }
    }

    /// How many keys have a code.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key of `code`.
    pub(super) fn key(&self, code: u32) -> &'a str {
        self.keys[code as usize]
    }

    /// The codes of `key(0..n)`, each passed to `coded(i, code)`; a new key gets the next code.
    pub(super) fn code_each(
        &mut self,
        n: usize,
        key: impl Fn(usize) -> &'a str,
        mut coded: impl FnMut(usize, u32),
    ) {
        let state = self.state.clone();
        pipelined(
            n,
            |i| state.hash_one(key(i)),
            |i, h, next| {
                if (self.keys.len() + 1) * 2 > self.slots.len() {
                    self.grow();
                }
                if let Some(next) = next {
                    self.prefetch(next);
                }
                let k = key(i);
                let code = match self.find(k, h) {
                    Ok(code) => code,
                    Err(slot) => {
                        let code = self.keys.len() as u32;
                        self.keys.push(k);
                        self.slots[slot] = (h & HASH_BITS) | (u64::from(code) + 1);
                        code
                    }
                };
                coded(i, code);
            },
        );
    }

    /// The codes of those of `key(0..n)` that have one, each passed to `found(i, code)`.
    pub(super) fn find_each<'k>(
        &self,
        n: usize,
        key: impl Fn(usize) -> &'k str,
        mut found: impl FnMut(usize, u32),
    ) {
        pipelined(
            n,
            |i| self.state.hash_one(key(i)),
            |i, h, next| {
                if let Some(next) = next {
                    self.prefetch(next);
                }
                if let Ok(code) = self.find(key(i), h) {
                    found(i, code);
                }
            },
        );
    }

    /// `key`'s code, or the empty slot where it would go.
    fn find(&self, key: &str, h: u64) -> Result<u32, usize> {
        let mut slot = h as usize & self.mask;
        loop {
            let s = self.slots[slot];
            if s == EMPTY {
                return Err(slot);
            }
            let code = (s as u32) - 1;
            if s & HASH_BITS == h & HASH_BITS && self.keys[code as usize] == key {
                return Ok(code);
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// Twice the slots, every key placed again.
    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        self.slots = vec![EMPTY; size];
        self.mask = size - 1;
        for (code, key) in self.keys.iter().enumerate() {
            let h = self.state.hash_one(key);
            let mut slot = h as usize & self.mask;
            while self.slots[slot] != EMPTY {
                slot = (slot + 1) & self.mask;
            }
            self.slots[slot] = (h & HASH_BITS) | (code as u64 + 1);
        }
    }

    /// Ask for the slot of hash `h` to be brought into the cache.
    fn prefetch(&self, h: u64) {
        let slot: *const u64 = &self.slots[h as usize & self.mask];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint to the cache: it reads nothing into the program and
        // never faults, and the address is of a live element anyway.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(slot.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }
}

/// `visit(i, hash(i), hash(i + AHEAD) when there is one)` for i in 0..n, each hash computed
/// once: the visit of key i prefetches the slot of key i + AHEAD.
fn pipelined(
    n: usize,
    hash: impl Fn(usize) -> u64,
    mut visit: impl FnMut(usize, u64, Option<u64>),
) {
    let mut hashes = [0u64; AHEAD];
    for (i, h) in hashes.iter_mut().enumerate().take(n) {
        *h = hash(i);
    }
    for i in 0..n {
        let h = hashes[i % AHEAD];
        let next = (i + AHEAD < n).then(|| hash(i + AHEAD));
        if let Some(next) = next {
            hashes[i % AHEAD] = next;
        }
        visit(i, h, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_in_order_of_first_insertion_through_growth() {
        let keys: Vec<String> = (0..1000).map(|i| format!("D{:04}", i % 700)).collect();
        let mut ids = Ids::with_capacity(4);
        let mut codes = Vec::new();
        ids.code_each(keys.len(), |i| &keys[i], |i, c| codes.push((i, c)));
        assert_eq!(ids.len(), 700);
        // The first 700 are new, in order; the rest repeat the first 300.
        for (i, c) in codes {
            assert_eq!(c as usize, i % 700, "row {i}");
            assert_eq!(ids.key(c), keys[i]);
        }
    }

    #[test]
    fn find_each_reports_only_known_keys() {
        let known = ["a", "bb", "ccc", ""];
        let mut ids = Ids::with_capacity(known.len());
        ids.code_each(known.len(), |i| known[i], |_, _| {});
        let probes = ["ccc", "x", "", "a", "bb", "bbb", "a"];
        let mut found = Vec::new();
        ids.find_each(probes.len(), |i| probes[i], |i, c| found.push((i, c)));
        assert_eq!(found, vec![(0, 2), (2, 3), (3, 0), (4, 1), (6, 0)]);
    }

    #[test]
    fn more_keys_than_the_prefetch_window_and_fewer() {
        for n in [0, 1, AHEAD - 1, AHEAD, AHEAD + 1, 5 * AHEAD + 3] {
            let keys: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            let mut ids = Ids::with_capacity(n);
            let mut seen = Vec::new();
            ids.code_each(n, |i| &keys[i], |i, c| seen.push((i, c as usize)));
            assert_eq!(seen, (0..n).map(|i| (i, i)).collect::<Vec<_>>());
            let mut hits = 0;
            ids.find_each(
                n,
                |i| &keys[i],
                |i, c| {
                    assert_eq!(c as usize, i);
                    hits += 1;
                },
            );
            assert_eq!(hits, n);
        }
    }
}
