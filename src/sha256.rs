//! SHA-256 whose state can be saved and restored, so a download that stops
//! half-way can resume and still check the whole file against the one digest
//! the Hub publishes. `sha2` does the compression; its `Sha256` cannot be
//! serialized, so the few lines of buffering and padding around
//! [`sha2::compress256`] are written here.

use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::GenericArray;

const INITIAL_STATE: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// A SHA-256 in progress: feed bytes with [`Sha256Stream::update`], save it
/// with serde, finish with [`Sha256Stream::hex`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sha256Stream {
    state: [u32; 8],
    /// Bytes of the block not yet full (fewer than 64).
    pending: Vec<u8>,
    /// Bytes hashed so far.
    length: u64,
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Sha256Stream { state: INITIAL_STATE, pending: Vec::with_capacity(64), length: 0 }
    }
}

impl Sha256Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.length += bytes.len() as u64;
        if !self.pending.is_empty() {
            let take = (64 - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < 64 {
                return;
            }
            sha2::compress256(&mut self.state, &[*GenericArray::from_slice(&self.pending)]);
            self.pending.clear();
        }
        let whole = bytes.len() / 64 * 64;
        for block in bytes[..whole].chunks_exact(64) {
            sha2::compress256(&mut self.state, std::slice::from_ref(GenericArray::from_slice(block)));
        }
        self.pending.extend_from_slice(&bytes[whole..]);
    }

    /// The digest of everything fed so far, as 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        let mut last = self.clone();
        let bits = self.length.wrapping_mul(8);
        // Padding: 0x80, zeros up to 56 mod 64, the length in bits.
        let zeros = (119 - (self.length % 64) as usize) % 64;
        let mut tail = vec![0x80u8];
        tail.resize(1 + zeros, 0);
        tail.extend_from_slice(&bits.to_be_bytes());
        last.update(&tail);
        debug_assert!(last.pending.is_empty());
        last.state.iter().map(|w| format!("{w:08x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn reference(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_digests() {
        assert_eq!(Sha256Stream::new().hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let mut abc = Sha256Stream::new();
        abc.update(b"abc");
        assert_eq!(abc.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn any_split_and_a_saved_state_give_sha2s_digest() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 5000] {
            let want = reference(&data[..len]);
            for split in [0, 1, 7, 63, 64, 100, 999] {
                let split = split.min(len);
                let mut first = Sha256Stream::new();
                first.update(&data[..split]);
                // Through JSON, as a download's checkpoint stores it.
                let mut resumed: Sha256Stream = serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
                for piece in data[split..len].chunks(37) {
                    resumed.update(piece);
                }
                assert_eq!(resumed.hex(), want, "len {len}, split {split}");
                assert_eq!(resumed.len(), len as u64);
            }
        }
    }
}
