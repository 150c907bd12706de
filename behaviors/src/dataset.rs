//! Fine-tuning dataset lines in the chat `messages` form (system, user, assistant) that
//! fine-tuning tools read, with metadata about the run that produced them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetLine {
    pub messages: Vec<Message>,
    pub metadata: LineMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineMetadata {
    pub scenario: String,
    pub seed: u64,
    /// Who wrote the tree: "hand", "expert", or a model name.
    pub source: String,
    pub outcome: String,
    pub success: bool,
    pub ticks: u64,
    pub sim_time_s: f64,
    /// SHA-256 of the assistant message: identical trees share it (for deduplication).
    pub tree_sha256: String,
}

impl DatasetLine {
    pub fn new(system: String, user: String, tree_yaml: String, metadata: LineMetadata) -> Self {
        Self {
            messages: vec![
                Message { role: "system".into(), content: system },
                Message { role: "user".into(), content: user },
                Message { role: "assistant".into(), content: tree_yaml },
            ],
            metadata,
        }
    }
}

/// Hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    digest.iter().flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_is_stable() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
