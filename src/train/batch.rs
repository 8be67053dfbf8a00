//! Length-bucketed batches capped by total frames: utterances of similar length share a batch, so
//! little compute goes to padding, and every batch holds at most `max_frames` padded frames.

use rand::seq::SliceRandom;
use rand::Rng;

/// Group utterance indices into batches. `lengths[i]` is utterance i's frame count. Lengths are sorted
/// with a little random jitter (so batches differ between epochs), cut into batches whose
/// `count × longest ≤ max_frames` (a longer single utterance gets a batch of its own), then the batch
/// order is shuffled.
pub fn make_batches(lengths: &[usize], max_frames: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
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
        if !current.is_empty() && new_longest * (current.len() + 1) > max_frames {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn batches_cover_everything_once_and_respect_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let lengths: Vec<usize> = (0..500).map(|i| 50 + (i * 37) % 700).collect();
        let batches = make_batches(&lengths, 4000, &mut rng);
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
}
