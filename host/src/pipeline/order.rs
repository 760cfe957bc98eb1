//! Puts worker results back into input order. Workers take chunks as they become free, so
//! results arrive out of order; each chunk carries its sequence number and the writer
//! releases results only in sequence.

use std::collections::BTreeMap;

/// Results waiting for an earlier one.
#[derive(Debug)]
pub struct Reorder<T> {
    next: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Reorder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> Reorder<T> {
    /// Accepts result `seq` and returns every result now due, in order.
    pub fn push(&mut self, seq: u64, item: T) -> Vec<T> {
        self.waiting.insert(seq, item);
        let mut due = Vec::new();
        while let Some(item) = self.waiting.remove(&self.next) {
            due.push(item);
            self.next += 1;
        }
        due
    }

    /// Results still waiting for an earlier one that never came.
    pub fn stranded(&self) -> usize {
        self.waiting.len()
    }

    /// The first sequence number not yet released.
    pub fn next(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::Reorder;

    #[test]
    fn results_come_out_in_sequence_whatever_order_they_arrive_in() {
        let mut r = Reorder::default();
        assert!(r.push(1, "b").is_empty());
        assert!(r.push(3, "d").is_empty());
        assert_eq!(r.push(0, "a"), ["a", "b"]);
        assert_eq!(r.push(2, "c"), ["c", "d"]);
        assert_eq!((r.next(), r.stranded()), (4, 0));
        assert!(r.push(5, "f").is_empty());
        assert_eq!(r.stranded(), 1);
    }
}
