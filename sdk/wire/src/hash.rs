//! FNV-1a, the SDK's hash for the Bloom filter of paths a plugin edited in an event: one
//! pass over a path gives its hash and, from the running state at each `.`, its parents'
//! hashes too. (The host's `Doc` hashes keys a word at a time instead.)

/// FNV-1a's starting state.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds one more byte into an FNV-1a state; the state after each byte is the hash of
/// the prefix so far.
pub fn fnv1a_step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
}

/// The FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| fnv1a_step(h, *b))
}
