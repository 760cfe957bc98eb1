//! Commit watermarks for a Kafka source: an offset may be committed only when every event
//! below it on its partition has been handled (indexed, dropped by the chain, or
//! dead-lettered), however out of order batches finish. This is what makes delivery
//! at-least-once: a crash replays from the watermark, and idempotent writes absorb the replay.

use std::collections::{BTreeSet, HashMap};

/// One partition's received-but-unhandled offsets.
#[derive(Debug, Default, Clone)]
struct Partition {
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
    partitions: HashMap<(String, i32), Partition>,
}

impl OffsetTracker {
    /// An event at `offset` was read and is now in flight.
    pub fn received(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        p.pending.insert(offset);
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// The event at `offset` is done with: indexed, dropped or dead-lettered.
    pub fn handled(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_owned(), partition)) {
            p.pending.remove(&offset);
        }
    }

    /// Watermarks that moved since the last call: what to commit now.
    pub fn to_commit(&mut self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for ((topic, partition), p) in &mut self.partitions {
            if let Some(w) = p.watermark().filter(|w| Some(*w) != p.committed) {
                p.committed = Some(w);
                out.push((topic.clone(), *partition, w));
            }
        }
        out.sort();
        out
    }

    /// The partition is being revoked: the watermark to commit before giving it up (if it
    /// moved), and the partition is forgotten. Events still in flight on it will be
    /// replayed by its next owner and absorbed by idempotent writes.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let p = self.partitions.remove(&(topic.to_owned(), partition))?;
        p.watermark().filter(|w| Some(*w) != p.committed)
    }

    /// Events in flight across all partitions (for backpressure).
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_waits_for_the_lowest_unhandled_offset() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.received("logs", 0, o);
        }
        assert_eq!(t.to_commit(), [("logs".to_owned(), 0, 10)]);
        t.handled("logs", 0, 12);
        t.handled("logs", 0, 13);
        assert!(t.to_commit().is_empty(), "10 and 11 are still in flight");
        t.handled("logs", 0, 10);
        assert_eq!(t.to_commit(), [("logs".to_owned(), 0, 11)]);
        t.handled("logs", 0, 11);
        t.handled("logs", 0, 14);
        assert_eq!(
            t.to_commit(),
            [("logs".to_owned(), 0, 15)],
            "all handled: commit past the last"
        );
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent_and_gaps_are_fine() {
        let mut t = OffsetTracker::default();
        t.received("logs", 0, 5);
        t.received("logs", 0, 9); // compaction or transaction markers leave gaps
        t.received("logs", 1, 100);
        t.handled("logs", 0, 5);
        t.handled("logs", 1, 100);
        let got = t.to_commit();
        assert_eq!(
            got,
            [("logs".to_owned(), 0, 9), ("logs".to_owned(), 1, 101)]
        );
    }

    #[test]
    fn revocation_commits_what_is_safe_and_forgets() {
        let mut t = OffsetTracker::default();
        for o in 0..4 {
            t.received("logs", 3, o);
        }
        t.handled("logs", 3, 0);
        t.handled("logs", 3, 2);
        assert_eq!(t.revoke("logs", 3), Some(1));
        assert_eq!(t.revoke("logs", 3), None);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn any_completion_order_never_commits_past_an_unhandled_event() {
        // Deterministic shuffles of completion order over 200 offsets.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50 {
            let mut t = OffsetTracker::default();
            let mut order: Vec<i64> = (0..200).collect();
            for o in &order {
                t.received("t", 0, *o);
            }
            for i in (1..order.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                order.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let mut done = BTreeSet::new();
            for o in order {
                t.handled("t", 0, o);
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
