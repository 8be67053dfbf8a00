//! The CTC topology of a label sequence, written once for the loss (scaled and log-space
//! forward–backward), its reference and the aligner.
//!
//! A target `l1 .. lN` becomes `2N + 1` states `blank, l1, blank, l2, ..., lN, blank`. A path starts in
//! state 0 or 1, ends in one of the last two, and at each frame stays, moves one state on, or skips a
//! blank — two states on — when the label it lands on differs from the label two back (between two
//! equal labels the blank is compulsory: `a a` must be emitted as `a <blk> a`).

use std::ops::RangeInclusive;

use crate::phones::{PhoneId, BLANK};

/// The states of one target: their classes, which may be entered by a skip, and which can lie on a
/// complete path at a given frame.
#[derive(Clone, Debug, Default)]
pub(crate) struct Topology {
    /// Class of each state: blank, l1, blank, l2, ..., blank (as class indices).
    classes: Vec<usize>,
}

impl Topology {
    /// The topology of `target` (which holds no blanks).
    pub(crate) fn new(target: &[PhoneId]) -> Self {
        let mut topology = Topology::default();
        topology.reset(target);
        topology
    }

    /// Become the topology of `target`, reusing the allocation.
    pub(crate) fn reset(&mut self, target: &[PhoneId]) {
        self.classes.clear();
        self.classes.push(BLANK.index());
        for label in target {
            self.classes.push(label.index());
            self.classes.push(BLANK.index());
        }
    }

    /// Number of states, `2N + 1`.
    pub(crate) fn num_states(&self) -> usize {
        self.classes.len()
    }

    /// Class of every state, in order.
    pub(crate) fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// Whether state `s` is one of the target's labels (odd states) rather than a blank.
    pub(crate) fn is_label(s: usize) -> bool {
        s % 2 == 1
    }

    /// Which label of the target state `s` is (for label states).
    pub(crate) fn label_index(s: usize) -> usize {
        s / 2
    }

    /// Whether state `s` may be entered from `s - 2`, skipping the blank between: a label different
    /// from the label two back.
    pub(crate) fn may_skip(&self, s: usize) -> bool {
        s >= 2 && Self::is_label(s) && self.classes[s] != self.classes[s - 2]
    }

    /// The states that can lie on a complete path at frame `t` of `num_frames` (`t < num_frames`): a
    /// path advances at most two states per frame, starts in state 0 or 1 and ends in one of the last
    /// two. Outside this window the forward or the backward variable is zero. Empty when the target
    /// cannot fit in the frames.
    pub(crate) fn window(&self, t: usize, num_frames: usize) -> RangeInclusive<usize> {
        let num_states = self.num_states();
        let first = num_states.saturating_sub(2 * (num_frames - t));
        let last = (2 * t + 1).min(num_states - 1);
        first..=last
    }

    /// The states a path may end in: the last label and the final blank (just the blank for an empty
    /// target).
    pub(crate) fn final_states(&self) -> RangeInclusive<usize> {
        self.num_states().saturating_sub(2)..=self.num_states() - 1
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn ids(v: &[u16]) -> Vec<PhoneId> {
        v.iter().map(|&i| PhoneId(i)).collect()
    }

    #[test]
    fn states_alternate_blank_and_label() {
        let t = Topology::new(&ids(&[3, 3, 5]));
        assert_eq!(t.classes(), &[0, 3, 0, 3, 0, 5, 0]);
        assert_eq!(t.num_states(), 7);
        assert!(Topology::is_label(3) && !Topology::is_label(4));
        assert_eq!(Topology::label_index(5), 2);
        assert_eq!(t.final_states(), 5..=6);
        assert_eq!(Topology::new(&[]).final_states(), 0..=0);
    }

    #[test]
    fn a_blank_is_compulsory_only_between_equal_labels() {
        let t = Topology::new(&ids(&[3, 3, 5]));
        let skippable: Vec<usize> = (0..t.num_states()).filter(|&s| t.may_skip(s)).collect();
        // State 3 (second 3) repeats state 1: no skip; state 5 (the 5) may skip the blank at 4.
        assert_eq!(skippable, vec![5]);
    }

    /// The states on some complete path at each frame, by brute force over every state sequence.
    fn states_on_complete_paths(t: &Topology, frames: usize) -> Vec<BTreeSet<usize>> {
        let mut paths: Vec<Vec<usize>> = vec![vec![0], vec![1]];
        for _ in 1..frames {
            paths = paths
                .into_iter()
                .flat_map(|p| {
                    let s = *p.last().expect("non-empty");
                    let mut next = vec![s];
                    if s + 1 < t.num_states() {
                        next.push(s + 1);
                    }
                    if s + 2 < t.num_states() && t.may_skip(s + 2) {
                        next.push(s + 2);
                    }
                    next.into_iter().map(move |n| {
                        let mut q = p.clone();
                        q.push(n);
                        q
                    })
                })
                .collect();
        }
        let mut on_path = vec![BTreeSet::new(); frames];
        for path in paths
            .iter()
            .filter(|p| t.final_states().contains(p.last().expect("non-empty")))
        {
            for (frame, &s) in path.iter().enumerate() {
                on_path[frame].insert(s);
            }
        }
        on_path
    }

    #[test]
    fn the_window_holds_every_state_on_a_complete_path() {
        // Without repeated labels the window is exact; with them (compulsory blanks) a superset.
        for (target, frames, exact) in [(vec![2, 4], 4, true), (vec![3, 3, 5], 7, false)] {
            let t = Topology::new(&ids(&target));
            for (frame, states) in states_on_complete_paths(&t, frames).iter().enumerate() {
                let window: BTreeSet<usize> = t.window(frame, frames).collect();
                assert!(states.is_subset(&window), "{target:?} frame {frame}");
                if exact {
                    assert_eq!(&window, states, "{target:?} frame {frame}");
                }
            }
        }
    }
}
