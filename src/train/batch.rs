//! Length-bucketed batches capped by total frames: utterances of similar length share a batch, so
//! little compute goes to padding, and every batch holds at most `max_frames` padded frames.

use rand::seq::SliceRandom;
use rand::Rng;

/// Group utterance indices into batches. `lengths[i]` is utterance i's frame count. Lengths are sorted
/// with a little random jitter (so batches differ between epochs), cut into batches whose
/// `count × longest ≤ max_frames` and `count ≤ max_utterances` (0: no limit; a longer single
/// utterance gets a batch of its own), then the batch order is shuffled.
pub fn make_batches(
    lengths: &[usize],
    max_frames: usize,
    max_utterances: usize,
    rng: &mut impl Rng,
) -> Vec<Vec<usize>> {
    let max_utterances = if max_utterances == 0 {
        usize::MAX
    } else {
        max_utterances
    };
    let mut order: Vec<(f64, usize)> = lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| (len as f64 * (1.0 + rng.gen_range(-0.05..0.05)), i))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for (_, i) in order {
        let len = lengths[i].max(1);
        let new_longest = longest.max(len);
        if !current.is_empty()
            && (new_longest * (current.len() + 1) > max_frames || current.len() >= max_utterances)
        {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches.shuffle(rng);
    batches
}

/// Split one batch whose items grew after augmentation (silence, pauses, non-speech clips can make a
/// 0.5 s digit 8 s long) into groups that each respect `count × longest ≤ max_frames` again, so a
/// batch of short utterances does not turn into many times its padded frames. A batch that still
/// fits is one group in its original order (so runs without such augmentation are unchanged);
/// otherwise items are packed in length order.
pub fn split_to_budget(lengths: &[usize], max_frames: usize) -> Vec<Vec<usize>> {
    let longest = lengths.iter().copied().max().unwrap_or(0).max(1);
    if longest * lengths.len() <= max_frames {
        return vec![(0..lengths.len()).collect()];
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut groups = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending: the item being added is the longest of its group.
        let len = lengths[i].max(1);
        if !current.is_empty() && len * (current.len() + 1) > max_frames {
            groups.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_grown_batch_is_split_back_under_the_budget() {
        // Fits: one group, original order.
        assert_eq!(split_to_budget(&[50, 40, 50], 150), vec![vec![0, 1, 2]]);
        // 200 digits of 50 frames where a few grew to 800 frames.
        let mut lengths = vec![50usize; 200];
        lengths[3] = 800;
        lengths[150] = 350;
        let groups = split_to_budget(&lengths, 10_000);
        let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        for group in &groups {
            let longest = group.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(longest * group.len() <= 10_000, "{group:?}");
        }
        assert!(groups.len() >= 2);
        // A single item longer than the budget still gets a group of its own.
        assert_eq!(
            split_to_budget(&[20_000, 10], 10_000),
            vec![vec![1], vec![0]]
        );
    }

    #[test]
    fn batches_cover_everything_once_and_respect_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let lengths: Vec<usize> = (0..500).map(|i| 50 + (i * 37) % 700).collect();
        let batches = make_batches(&lengths, 4000, 0, &mut rng);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..500).collect::<Vec<_>>());
        for batch in &batches {
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(batch.len() == 1 || longest * batch.len() <= 4000);
        }
        // Bucketing keeps padding low: padded frames within 25 % of real frames.
        let real: usize = lengths.iter().sum();
        let padded: usize = batches
            .iter()
            .map(|b| b.iter().map(|&i| lengths[i]).max().unwrap() * b.len())
            .sum();
        assert!((padded as f64) < real as f64 * 1.25, "{padded} vs {real}");
    }

    #[test]
    fn batches_hold_at_most_max_utterances() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let lengths = vec![50; 100];
        let batches = make_batches(&lengths, 8000, 32, &mut rng);
        assert_eq!(batches.len(), 4);
        assert!(batches.iter().all(|b| b.len() <= 32));
        let mut all: Vec<usize> = batches.concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        // Without the cap, the frame budget alone: 8000 / 50 = 160 per batch, so one batch.
        assert_eq!(make_batches(&lengths, 8000, 0, &mut rng).len(), 1);
    }
}
