//! Commit watermarks for a Kafka source: an offset may be committed only when every event
//! below it on its partition has been handled (indexed, dropped by the chain, or
//! dead-lettered), however out of order batches finish. This is what makes delivery
//! at-least-once: a crash replays from the watermark, and idempotent writes absorb the replay.
//!
//! Each assignment of a partition gets a fresh epoch. Events still in flight when their
//! partition is revoked carry the old epoch, so their late completion can never advance
//! the watermark of a later assignment of the same partition.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// One partition's received-but-unhandled offsets.
#[derive(Debug, Default, Clone)]
struct Partition {
    epoch: u64,
    pending: BTreeSet<i64>,
    /// One past the highest offset received.
    next: Option<i64>,
    /// The last watermark handed out for commit.
    committed: Option<i64>,
}

impl Partition {
    /// The offset to commit (Kafka's "next offset to read"): the lowest unhandled offset,
    /// or one past the highest received when all are handled.
    fn watermark(&self) -> Option<i64> {
        self.pending.first().copied().or(self.next)
    }
}

/// Watermarks for every assigned partition.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    topics: HashMap<Arc<str>, HashMap<i32, Partition>>,
    epochs: u64,
}

impl OffsetTracker {
    /// An event at `offset` was read and is now in flight; returns the partition's epoch,
    /// to be handed back with [`handled`](Self::handled).
    pub fn received(&mut self, topic: &str, partition: i32, offset: i64) -> u64 {
        if !self.topics.contains_key(topic) {
            self.topics.insert(topic.into(), HashMap::new());
        }
        let partitions = self.topics.get_mut(topic).expect("inserted above");
        let p = partitions.entry(partition).or_insert_with(|| {
            self.epochs += 1;
            Partition {
                epoch: self.epochs,
                ..Partition::default()
            }
        });
        p.pending.insert(offset);
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
        p.epoch
    }

    /// The events at `offsets` (received under `epoch`) are done with: indexed, dropped or
    /// dead-lettered. Completions from an earlier assignment of the partition are ignored.
    pub fn handled(
        &mut self,
        topic: &str,
        partition: i32,
        epoch: u64,
        offsets: impl IntoIterator<Item = i64>,
    ) {
        let Some(p) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(&partition))
            .filter(|p| p.epoch == epoch)
        else {
            return;
        };
        for offset in offsets {
            p.pending.remove(&offset);
        }
    }

    /// Watermarks that moved since the last call: what to commit now.
    pub fn to_commit(&mut self) -> Vec<(Arc<str>, i32, i64)> {
        let mut out = Vec::new();
        for (topic, partitions) in &mut self.topics {
            for (partition, p) in partitions {
                if let Some(w) = p.watermark().filter(|w| Some(*w) != p.committed) {
                    p.committed = Some(w);
                    out.push((topic.clone(), *partition, w));
                }
            }
        }
        out.sort();
        out
    }

    /// The partition is being revoked: the watermark to commit before giving it up (if it
    /// moved), and the partition is forgotten. Events still in flight on it will be
    /// replayed by its next owner and absorbed by idempotent writes.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let p = self.topics.get_mut(topic)?.remove(&partition)?;
        p.watermark().filter(|w| Some(*w) != p.committed)
    }

    /// Events in flight across all partitions.
    pub fn in_flight(&self) -> usize {
        self.topics
            .values()
            .flat_map(HashMap::values)
            .map(|p| p.pending.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_waits_for_the_lowest_unhandled_offset() {
        let mut t = OffsetTracker::default();
        let mut e = 0;
        for o in 10..15 {
            e = t.received("logs", 0, o);
        }
        assert_eq!(t.to_commit(), [("logs".into(), 0, 10)]);
        t.handled("logs", 0, e, [12, 13]);
        assert!(t.to_commit().is_empty(), "10 and 11 are still in flight");
        t.handled("logs", 0, e, [10]);
        assert_eq!(t.to_commit(), [("logs".into(), 0, 11)]);
        t.handled("logs", 0, e, [11, 14]);
        assert_eq!(
            t.to_commit(),
            [("logs".into(), 0, 15)],
            "all handled: commit past the last"
        );
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent_and_gaps_are_fine() {
        let mut t = OffsetTracker::default();
        let e0 = t.received("logs", 0, 5);
        t.received("logs", 0, 9); // compaction or transaction markers leave gaps
        let e1 = t.received("logs", 1, 100);
        t.handled("logs", 0, e0, [5]);
        t.handled("logs", 1, e1, [100]);
        let got = t.to_commit();
        assert_eq!(got, [("logs".into(), 0, 9), ("logs".into(), 1, 101)]);
    }

    #[test]
    fn revocation_commits_what_is_safe_and_forgets() {
        let mut t = OffsetTracker::default();
        let mut e = 0;
        for o in 0..4 {
            e = t.received("logs", 3, o);
        }
        t.handled("logs", 3, e, [0, 2]);
        assert_eq!(t.revoke("logs", 3), Some(1));
        assert_eq!(t.revoke("logs", 3), None);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn late_completions_from_an_earlier_assignment_are_ignored() {
        let mut t = OffsetTracker::default();
        let old = t.received("logs", 0, 7);
        t.revoke("logs", 0);
        // Reassigned: the committed offset was 7, so 7 is read again.
        let new = t.received("logs", 0, 7);
        assert_ne!(old, new);
        t.handled("logs", 0, old, [7]);
        assert_eq!(t.to_commit(), [("logs".into(), 0, 7)], "still in flight");
        t.handled("logs", 0, new, [7]);
        assert_eq!(t.to_commit(), [("logs".into(), 0, 8)]);
    }

    #[test]
    fn any_completion_order_never_commits_past_an_unhandled_event() {
        // Deterministic shuffles of completion order over 200 offsets.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50 {
            let mut t = OffsetTracker::default();
            let mut order: Vec<i64> = (0..200).collect();
            let mut e = 0;
            for o in &order {
                e = t.received("t", 0, *o);
            }
            for i in (1..order.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                order.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let mut done = BTreeSet::new();
            for o in order {
                t.handled("t", 0, e, [o]);
                done.insert(o);
                for (_, _, w) in t.to_commit() {
                    assert!(
                        (0..w).all(|x| done.contains(&x)),
                        "committed {w} with an earlier event unhandled"
                    );
                }
            }
        }
    }
}
