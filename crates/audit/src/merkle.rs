//! RFC 6962 Merkle tree hashes, the per-entry hash chain, and signed tree heads.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The chain link of an entry: `SHA-256(previous link ‖ leaf)`, the first previous being zeros.
pub fn chain_hash(previous: &Hash, leaf: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(leaf);
    h.finalize().into()
}

/// The Merkle tree hash of RFC 6962 §2.1 over leaf hashes (the empty tree hashes to SHA-256("")).
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            // The largest power of two smaller than n.
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

/// The incremental form: the roots of the perfect subtrees of the tree so far, largest first,
/// so appending a leaf and computing the root cost O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleFrontier {
    size: u64,
    /// (height, root) of each perfect subtree, left to right.
    nodes: Vec<(u32, Hash)>,
}

impl MerkleFrontier {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.nodes.last() {
            if height != node.0 {
                break;
            }
            self.nodes.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        match iter.next() {
            None => Sha256::digest([]).into(),
            Some(&(_, last)) => iter.fold(last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }
}

/// A signed statement of the log's size, Merkle root and chain link at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    pub tree_size: u64,
    pub root: String,
    pub chain: String,
    pub at: String,
    pub signature: String,
}

impl SignedHead {
    fn message(tree_size: u64, root: &str, chain: &str, at: &str) -> Vec<u8> {
        format!("cloudfilm-audit-head-v1\n{tree_size}\n{root}\n{chain}\n{at}").into_bytes()
    }

    pub fn sign(tree_size: u64, root: &Hash, chain: &Hash, at: &str, sign: impl Fn(&[u8]) -> [u8; 64]) -> SignedHead {
        let (root, chain) = (hex::encode(root), hex::encode(chain));
        let signature = hex::encode(sign(&Self::message(tree_size, &root, &chain, at)));
        SignedHead { tree_size, root, chain, at: at.to_owned(), signature }
    }

    pub fn signature_valid(&self, public_key: &[u8; 32]) -> bool {
        let Ok(signature) = hex::decode(&self.signature) else {
            return false;
        };
        let message = Self::message(self.tree_size, &self.root, &self.chain, &self.at);
        cloudfilm_crypto::signing::verify(public_key, &message, &signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
    }

    #[test]
    fn frontier_matches_the_recursive_definition() {
        let all = leaves(70);
        let mut frontier = MerkleFrontier::default();
        assert_eq!(frontier.root(), merkle_root(&[]));
        for n in 1..=all.len() {
            frontier.push(all[n - 1]);
            assert_eq!(frontier.root(), merkle_root(&all[..n]), "size {n}");
        }
    }

    #[test]
    fn split_is_the_largest_power_of_two_below_n() {
        let l = leaves(7);
        let expected = node_hash(
            &node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])),
            &node_hash(&node_hash(&l[4], &l[5]), &l[6]),
        );
        assert_eq!(merkle_root(&l), expected);
        let l = leaves(5);
        let expected = node_hash(&node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])), &l[4]);
        assert_eq!(merkle_root(&l), expected);
    }

    #[test]
    fn rfc6962_empty_tree_and_leaf_prefix() {
        assert_eq!(hex::encode(merkle_root(&[])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // The RFC 6962 test vector: the leaf hash of the empty entry.
        assert_eq!(hex::encode(leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    }
}
