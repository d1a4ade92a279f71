//! Verification of a stored log against its own links and against the signed heads kept
//! outside the database (and their copy inside it): an edited, removed, reordered or truncated entry, and a database
//! rolled back behind a kept head, are found and named.

use crate::entry::seq_of;
use crate::merkle::{Hash, MerkleFrontier, SignedHead, chain_hash, leaf_hash};
use std::collections::BTreeMap;

/// An entry as the database holds it.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub seq: u64,
    pub canonical: String,
    pub leaf: Vec<u8>,
    pub chain: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("entry {seq} was altered: its content no longer matches its hash")]
    Altered { seq: u64 },
    #[error("entry {expected} is missing (the next stored entry is {found})")]
    Missing { expected: u64, found: u64 },
    #[error("entry {seq} is out of place: it says it is entry {claims}")]
    Reordered { seq: u64, claims: u64 },
    #[error("entry {seq} does not link to the entry before it (an entry was removed, inserted or reordered)")]
    ChainBroken { seq: u64 },
    #[error("the signed head of {at} for {tree_size} entries has an invalid signature")]
    BadHeadSignature { tree_size: u64, at: String },
    #[error(
        "the log was truncated or rolled back: the signed head of {at} covers {tree_size} entries, only {present} are present"
    )]
    Truncated { tree_size: u64, present: u64, at: String },
    #[error(
        "entries 1..={tree_size} no longer match the signed head of {at} (first differing link: entry {first_bad})"
    )]
    HeadMismatch { tree_size: u64, at: String, first_bad: u64 },
    #[error(
        "the heads file lost the signed head of {at} for {tree_size} entries that the archive keeps (the file was deleted, cut short or replaced)"
    )]
    HeadsFileLost { tree_size: u64, at: String },
    #[error("two different signed heads claim {tree_size} entries (of {first} and of {second})")]
    HeadsDisagree { tree_size: u64, first: String, second: String },
}

/// The heads to check a log against: those of the heads file and those the archive keeps in
/// its database (a second copy, so deleting the file is not enough to hide a rewrite). Every
/// kept head must still be in the file; a head only in the file counts too (written before
/// the database copy existed, or its database write failed). Two processes may sign the same
/// size at different moments; heads of one size must agree on root and link.
///
/// `file_is_complete`: the file is this archive's only signer's (the embedded index). Nodes
/// sharing one index each keep the heads they signed, so there a kept head may be missing
/// from one node's file, but no head of the file may disagree with the database's.
pub fn merge_heads(
    file: &[SignedHead],
    kept: &[SignedHead],
    public_key: &[u8; 32],
    file_is_complete: bool,
) -> Result<Vec<SignedHead>, Broken> {
    if let Some(forged) = file.iter().chain(kept).find(|h| !h.signature_valid(public_key)) {
        return Err(Broken::BadHeadSignature { tree_size: forged.tree_size, at: forged.at.clone() });
    }
    let same = |a: &SignedHead, b: &SignedHead| a.tree_size == b.tree_size && a.root == b.root && a.chain == b.chain;
    let mut merged: Vec<SignedHead> = file.to_vec();
    for head in kept {
        if !file.iter().any(|f| same(f, head)) {
            if let Some(other) = file.iter().find(|f| f.tree_size == head.tree_size) {
                return Err(disagree(other, head));
            }
            if file_is_complete {
                return Err(Broken::HeadsFileLost { tree_size: head.tree_size, at: head.at.clone() });
            }
            merged.push(head.clone());
        }
    }
    merged.sort_by_key(|h| h.tree_size);
    for pair in merged.windows(2) {
        if pair[0].tree_size == pair[1].tree_size && !same(&pair[0], &pair[1]) {
            return Err(disagree(&pair[0], &pair[1]));
        }
    }
    Ok(merged)
}

fn disagree(a: &SignedHead, b: &SignedHead) -> Broken {
    Broken::HeadsDisagree { tree_size: a.tree_size, first: a.at.clone(), second: b.at.clone() }
}

/// What an intact log looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub heads_checked: usize,
    pub root: String,
}

/// Checks entries one at a time (in order), then the end of the log against the heads.
pub struct Verifier<'h> {
    heads: &'h [SignedHead],
    by_size: BTreeMap<u64, &'h SignedHead>,
    frontier: MerkleFrontier,
    link: Hash,
    links: Vec<Hash>,
    expected: u64,
}

impl<'h> Verifier<'h> {
    /// Fails at once on a head whose signature is invalid.
    pub fn new(heads: &'h [SignedHead], public_key: &[u8; 32]) -> Result<Verifier<'h>, Broken> {
        for head in heads {
            if !head.signature_valid(public_key) {
                return Err(Broken::BadHeadSignature { tree_size: head.tree_size, at: head.at.clone() });
            }
        }
        Ok(Verifier {
            heads,
            by_size: heads.iter().map(|h| (h.tree_size, h)).collect(),
            frontier: MerkleFrontier::default(),
            link: [0; 32],
            links: Vec::new(),
            expected: 1,
        })
    }

    pub fn push(&mut self, entry: &StoredEntry) -> Result<(), Broken> {
        let expected = self.expected;
        if entry.seq != expected {
            return Err(if entry.seq > expected {
                Broken::Missing { expected, found: entry.seq }
            } else {
                Broken::Reordered { seq: expected, claims: entry.seq }
            });
        }
        let leaf = leaf_hash(entry.canonical.as_bytes());
        if entry.leaf != leaf {
            return Err(Broken::Altered { seq: entry.seq });
        }
        match seq_of(&entry.canonical) {
            Some(claims) if claims == entry.seq => {}
            Some(claims) => {
                return Err(Broken::Reordered { seq: entry.seq, claims });
            }
            None => return Err(Broken::Altered { seq: entry.seq }),
        }
        self.link = chain_hash(&self.link, &leaf);
        if entry.chain != self.link {
            return Err(Broken::ChainBroken { seq: entry.seq });
        }
        // Every link is kept (32 bytes an entry) to name where a rewrite began.
        self.links.push(self.link);
        self.frontier.push(leaf);
        if let Some(head) = self.by_size.get(&self.frontier.size())
            && (hex::encode(self.frontier.root()) != head.root || hex::encode(self.link) != head.chain)
        {
            let first_bad = first_differing_link(&self.links, self.heads);
            return Err(Broken::HeadMismatch { tree_size: head.tree_size, at: head.at.clone(), first_bad });
        }
        self.expected += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<VerifyReport, Broken> {
        if let Some(head) = self.heads.iter().max_by_key(|h| h.tree_size)
            && head.tree_size > self.frontier.size()
        {
            return Err(Broken::Truncated {
                tree_size: head.tree_size,
                present: self.frontier.size(),
                at: head.at.clone(),
            });
        }
        Ok(VerifyReport {
            entries: self.frontier.size(),
            heads_checked: self.heads.len(),
            root: hex::encode(self.frontier.root()),
        })
    }
}

/// Checks every entry in order, then every signed head.
pub fn verify_log(
    entries: impl IntoIterator<Item = StoredEntry>,
    heads: &[SignedHead],
    public_key: &[u8; 32],
) -> Result<VerifyReport, Broken> {
    let mut verifier = Verifier::new(heads, public_key)?;
    for entry in entries {
        verifier.push(&entry)?;
    }
    verifier.finish()
}

/// The smallest head size whose chain link differs bounds where the rewrite began: the entry
/// right after the largest head that still agrees.
fn first_differing_link(links: &[Hash], heads: &[SignedHead]) -> u64 {
    let mut agreeing = 0u64;
    let mut sizes: Vec<&SignedHead> = heads.iter().filter(|h| h.tree_size as usize <= links.len()).collect();
    sizes.sort_by_key(|h| h.tree_size);
    for head in sizes {
        if hex::encode(links[head.tree_size as usize - 1]) == head.chain {
            agreeing = head.tree_size;
        } else {
            break;
        }
    }
    agreeing + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, AuditEvent, Outcome};
    use cloudfilm_crypto::{KeyRing, signing::ArchiveSigner};

    struct Log {
        entries: Vec<StoredEntry>,
        heads: Vec<SignedHead>,
        signer: ArchiveSigner,
    }

    fn build(n: u64, head_every: u64) -> Log {
        let signer = ArchiveSigner::new(&KeyRing::generate());
        let mut entries = Vec::new();
        let mut heads = Vec::new();
        let mut frontier = MerkleFrontier::default();
        let mut link = [0u8; 32];
        for seq in 1..=n {
            let e = AuditEvent::new(Action::Query, "org:H/key:k", format!("study:1.2.{seq}"), Outcome::Success);
            let canonical = e.canonical(seq, "2026-11-23T10:00:00Z");
            let leaf = leaf_hash(canonical.as_bytes());
            link = chain_hash(&link, &leaf);
            frontier.push(leaf);
            entries.push(StoredEntry { seq, canonical, leaf: leaf.to_vec(), chain: link.to_vec() });
            if seq % head_every == 0 {
                heads.push(SignedHead::sign(seq, &frontier.root(), &link, "t", |m| signer.sign(m)));
            }
        }
        Log { entries, heads, signer }
    }

    fn check(log: &Log) -> Result<VerifyReport, Broken> {
        verify_log(log.entries.clone(), &log.heads, &log.signer.public_key())
    }

    /// Rewrites hashes from `from` on, as an attacker with database access would.
    fn relink(log: &mut Log) {
        let mut link = [0u8; 32];
        for e in &mut log.entries {
            let leaf = leaf_hash(e.canonical.as_bytes());
            link = chain_hash(&link, &leaf);
            e.leaf = leaf.to_vec();
            e.chain = link.to_vec();
        }
    }

    #[test]
    fn an_intact_log_verifies() {
        let log = build(25, 10);
        let report = check(&log).unwrap();
        assert_eq!(report.entries, 25);
        assert_eq!(report.heads_checked, 2);
    }

    #[test]
    fn an_edited_middle_entry_is_named() {
        let mut log = build(25, 10);
        log.entries[12].canonical = log.entries[12].canonical.replace("1.2.13", "1.2.99");
        assert_eq!(check(&log), Err(Broken::Altered { seq: 13 }));
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let mut log = build(25, 10);
        log.entries.remove(6);
        assert_eq!(check(&log), Err(Broken::Missing { expected: 7, found: 8 }));
    }

    #[test]
    fn swapped_entries_are_named() {
        // The database returns rows by sequence number, so a reorder is swapped contents.
        let mut log = build(25, 10);
        let (a, b) = (log.entries[3].clone(), log.entries[4].clone());
        log.entries[3] = StoredEntry { seq: 4, ..b };
        log.entries[4] = StoredEntry { seq: 5, ..a };
        assert_eq!(check(&log), Err(Broken::Reordered { seq: 4, claims: 5 }));
    }

    #[test]
    fn a_truncated_tail_or_rollback_is_detected() {
        let mut log = build(25, 10);
        log.entries.truncate(15);
        assert!(matches!(check(&log), Err(Broken::Truncated { tree_size: 20, present: 15, .. })));
    }

    #[test]
    fn a_consistent_rewrite_is_caught_by_the_signed_heads() {
        let mut log = build(25, 5);
        log.entries[12].canonical = log.entries[12].canonical.replace("1.2.13", "1.2.99");
        relink(&mut log);
        assert!(matches!(check(&log), Err(Broken::HeadMismatch { tree_size: 15, first_bad: 11, .. })));
    }

    #[test]
    fn a_heads_file_missing_a_kept_head_is_named() {
        let log = build(25, 10);
        let key = log.signer.public_key();
        let kept = log.heads.clone();
        assert_eq!(merge_heads(&log.heads, &kept, &key, true).unwrap(), log.heads);
        assert!(matches!(merge_heads(&[], &kept, &key, true), Err(Broken::HeadsFileLost { tree_size: 10, .. })));
        assert!(matches!(
            merge_heads(&log.heads[..1], &kept, &key, true),
            Err(Broken::HeadsFileLost { tree_size: 20, .. })
        ));
        // Heads only in the file (older than the database copy) still count.
        assert_eq!(merge_heads(&log.heads, &kept[1..], &key, true).unwrap().len(), 2);
        let head = &kept[0];
        let bytes = |h: &str| -> Hash { hex::decode(h).unwrap().try_into().unwrap() };
        let sign = |root: &Hash, at: &str| {
            SignedHead::sign(head.tree_size, root, &bytes(&head.chain), at, |m| log.signer.sign(m))
        };
        let later = sign(&bytes(&head.root), "later");
        let file = [log.heads.clone(), vec![later.clone()]].concat();
        assert_eq!(merge_heads(&file, &[later], &key, true).unwrap().len(), 3, "signed again later: no fork");
        let fork = sign(&[7u8; 32], "later");
        assert!(matches!(
            merge_heads(&log.heads, std::slice::from_ref(&fork), &key, true),
            Err(Broken::HeadsDisagree { tree_size: 10, .. })
        ));
        let mut forged = head.clone();
        forged.tree_size = 11;
        assert!(matches!(merge_heads(&log.heads, &[forged], &key, true), Err(Broken::BadHeadSignature { .. })));
        // Nodes sharing one index: another node's heads are not in this node's file.
        assert_eq!(merge_heads(&log.heads[..1], &kept, &key, false).unwrap().len(), 2);
        assert!(matches!(merge_heads(&log.heads, &[fork], &key, false), Err(Broken::HeadsDisagree { .. })));
    }

    #[test]
    fn a_forged_head_is_refused() {
        let mut log = build(25, 10);
        log.heads[0].tree_size = 9;
        assert!(matches!(check(&log), Err(Broken::BadHeadSignature { .. })));
    }
}
