//! The binary phone-LM format: the n-grams as a trie of sorted arrays (KenLM's "trie" layout without
//! its quantisation), scored where it lies — in the program's own read-only data for the built-in LM,
//! or in one buffer read from a file — so that loading parses nothing and builds no hash table.
//! Loading the built-in 6-gram (781k n-grams) from gzipped ARPA took ≈ 0.25 s and 50 MB; from this
//! format it takes a structural check of the arrays. Values are f64, the precision the hash maps
//! hold, so both score alike to the last bit and ARPA text converts there and back unchanged.
//!
//! Layout, all numbers little-endian:
//!
//! ```text
//! magic      8 bytes  "PHONRLM" then format version 1
//! order      u32      n-gram order N (1..=8)
//! names      u32      number of named tokens, then per token: u16 token, u8 length, UTF-8 name
//! counts     u64 × N  entries per level (n-grams of order n, plus placeholders, see below)
//! level n    words    u16 × count        the n-gram's last token
//!            probs    f64 × count        ln P(last | the others); NaN: a placeholder
//!            (n < N)  backoffs f64 × count   ln back-off weight of the n-gram as a history
//!            (n < N)  children u32 × (count + 1)  level n+1 entries [children[i], children[i+1])
//!                                         extend entry i
//! ```
//!
//! Level 1 holds the unigrams sorted by token; the entries of level n + 1 are sorted by (parent entry,
//! last token), so the children of an entry are one sorted run, found by binary search. An n-gram
//! listed without its (n − 1)-gram prefix (ARPA files may do that) gets a placeholder for the prefix:
//! probability NaN (not stored) and back-off 0 (ln 1), exactly what a lookup of the missing prefix
//! means. Tokens are a phone inventory's ids, named in the header, plus the sentence markers; a model
//! with other ids for the same names is served through a token map (see `PhoneLm`).

use std::path::Path;

use super::lm::{NgramEntry, Token, MAX_LM_ORDER};
use crate::error::{Error, Result};

/// The first 8 bytes of a binary phone LM: the name and the format version.
pub const MAGIC: [u8; 8] = *b"PHONRLM\x01";

/// The bytes of a binary LM: compiled into the program, or read from a file.
#[derive(Clone)]
enum Bytes {
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Static(bytes) => bytes,
            Bytes::Owned(bytes) => bytes,
        }
    }
}

/// The phone tokens a file names, with their names.
type Names = Vec<(Token, String)>;

/// Where one level's arrays start, in bytes from the start of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Level {
    count: usize,
    words: usize,
    probs: usize,
    /// Back-offs and children: absent for the highest order.
    backoffs: Option<usize>,
    children: Option<usize>,
}

/// A binary phone LM, validated, scored in place.
#[derive(Clone)]
pub struct LmTrie {
    bytes: Bytes,
    levels: Vec<Level>,
    /// The tokens the file names, with their names (phones; the markers are implicit).
    names: Names,
}

impl std::fmt::Debug for LmTrie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmTrie")
            .field("order", &self.levels.len())
            .field(
                "entries",
                &self.levels.iter().map(|l| l.count).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PartialEq for LmTrie {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.get() == other.bytes.get()
    }
}

/// Reads little-endian numbers at byte offsets, bounds-checked by the caller's validation.
fn u16_at(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .map_or(u16::MAX, |b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn f64_at(bytes: &[u8], at: usize) -> f64 {
    bytes.get(at..at + 8).map_or(f64::NAN, |b| {
        let mut word = [0; 8];
        word.copy_from_slice(b);
        f64::from_le_bytes(word)
    })
}

impl LmTrie {
    /// Whether `bytes` start like a binary phone LM.
    pub fn is_binary(bytes: &[u8]) -> bool {
        bytes.starts_with(&MAGIC[..7])
    }

    /// A binary LM compiled into the program: nothing is copied, and only the header is checked
    /// (the arrays were checked when it was built in: `tests/lm_binary.rs`), so that pages of it
    /// are read only when a lookup needs them. A damaged array could give wrong scores but never
    /// read outside the buffer: every read is bounds-checked.
    pub fn from_static(bytes: &'static [u8], source: &Path) -> Result<Self> {
        Self::new(Bytes::Static(bytes), source, false)
    }

    /// A binary LM read into memory, every array checked.
    pub fn from_vec(bytes: Vec<u8>, source: &Path) -> Result<Self> {
        Self::new(Bytes::Owned(bytes), source, true)
    }

    fn new(bytes: Bytes, source: &Path, check_arrays: bool) -> Result<Self> {
        let (levels, names) =
            parse_layout(bytes.get(), check_arrays).map_err(|reason| Error::Parse {
                path: source.to_path_buf(),
                line: None,
                reason: format!("not a valid binary phone LM: {reason}"),
            })?;
        Ok(LmTrie {
            bytes,
            levels,
            names,
        })
    }

    /// The n-gram order.
    pub fn order(&self) -> usize {
        self.levels.len()
    }

    /// The phone tokens the file names.
    pub fn names(&self) -> &[(Token, String)] {
        &self.names
    }

    /// The entry range of level `n` (1-based) under the history entry `parent` of level `n − 1`
    /// (`None`: the root, i.e. all of level 1).
    fn children(&self, n: usize, parent: Option<usize>) -> (usize, usize) {
        match parent {
            None => (0, self.levels[0].count),
            Some(index) => {
                let above = &self.levels[n - 2];
                let bytes = self.bytes.get();
                let children = above.children.unwrap_or(0);
                (
                    u32_at(bytes, children + 4 * index) as usize,
                    u32_at(bytes, children + 4 * (index + 1)) as usize,
                )
            }
        }
    }

    /// The entry of level `n` with last token `word` among `range`, by binary search.
    fn find(&self, n: usize, (mut low, mut high): (usize, usize), word: Token) -> Option<usize> {
        let level = &self.levels[n - 1];
        let bytes = self.bytes.get();
        while low < high {
            let middle = low + (high - low) / 2;
            let found = u16_at(bytes, level.words + 2 * middle);
            match found.cmp(&word) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(middle),
            }
        }
        None
    }

    /// The entry of the n-gram `tokens` (oldest first) in level `tokens.len()`, if stored (a
    /// placeholder included).
    fn walk(&self, tokens: &[Token]) -> Option<usize> {
        let mut parent = None;
        for (i, &token) in tokens.iter().enumerate() {
            let n = i + 1;
            parent = Some(self.find(n, self.children(n, parent), token)?);
        }
        parent
    }

    fn entry(&self, n: usize, index: usize) -> NgramEntry {
        let level = &self.levels[n - 1];
        let bytes = self.bytes.get();
        NgramEntry {
            log_prob: f64_at(bytes, level.probs + 8 * index),
            log_backoff: level
                .backoffs
                .map_or(0.0, |at| f64_at(bytes, at + 8 * index)),
        }
    }

    /// Back-off lookup as `PhoneLm` does it over hash maps (same order of additions, so the same
    /// f64 result): the longest stored `(history suffix, word)`, plus the back-offs of the longer
    /// histories; `never` if not even the unigram is stored.
    pub fn log_prob(&self, history: &[Token], word: Token, never: f64) -> f64 {
        let mut log_backoff = 0.0;
        for skip in 0..=history.len() {
            let suffix = &history[skip..];
            let n = suffix.len() + 1;
            // Every stored n-gram's prefix is in the trie (placeholders), so a suffix that is not
            // there has no stored continuation either.
            let parent = if suffix.is_empty() {
                None
            } else {
                match self.walk(suffix) {
                    Some(parent) => Some(parent),
                    None => continue,
                }
            };
            if let Some(index) = self.find(n, self.children(n, parent), word) {
                let found = self.entry(n, index);
                if !found.log_prob.is_nan() {
                    return log_backoff + found.log_prob;
                }
            }
            if let Some(parent) = parent {
                log_backoff += self.entry(n - 1, parent).log_backoff;
            }
        }
        never
    }

    /// Every stored n-gram (placeholders left out), by order, each as its tokens (oldest first)
    /// and entry, in sorted order.
    pub fn ngrams(&self) -> Vec<Vec<(Vec<Token>, NgramEntry)>> {
        let bytes = self.bytes.get();
        let mut all: Vec<Vec<(Vec<Token>, NgramEntry)>> = Vec::with_capacity(self.order());
        // The tokens of every entry of the level above, placeholders included.
        let mut above: Vec<Vec<Token>> = Vec::new();
        for n in 1..=self.order() {
            let level = self.levels[n - 1];
            let mut keys: Vec<Vec<Token>> = Vec::with_capacity(level.count);
            match n {
                1 => {
                    keys.extend((0..level.count).map(|i| vec![u16_at(bytes, level.words + 2 * i)]))
                }
                _ => {
                    for (parent, prefix) in above.iter().enumerate() {
                        let (start, end) = self.children(n, Some(parent));
                        for i in start..end {
                            let mut key = prefix.clone();
                            key.push(u16_at(bytes, level.words + 2 * i));
                            keys.push(key);
                        }
                    }
                }
            }
            all.push(
                keys.iter()
                    .enumerate()
                    .map(|(i, key)| (key.clone(), self.entry(n, i)))
                    .filter(|(_, entry)| !entry.log_prob.is_nan())
                    .collect(),
            );
            above = keys;
        }
        all
    }
}

/// Check the header and every array: sizes, child ranges that tile the next level in order, and
/// sibling tokens strictly increasing (binary search needs it). A file that passes cannot make a
/// lookup read outside the buffer or miss a stored n-gram.
fn parse_layout(
    bytes: &[u8],
    check_arrays: bool,
) -> std::result::Result<(Vec<Level>, Names), String> {
    if !bytes.starts_with(&MAGIC[..7]) {
        return Err("it does not start with PHONRLM".into());
    }
    if bytes.get(7) != Some(&MAGIC[7]) {
        return Err(format!(
            "format version {} (this phonrec reads version {})",
            bytes.get(7).copied().unwrap_or(0),
            MAGIC[7]
        ));
    }
    let mut at: usize = 8;
    let mut take = |n: usize| -> std::result::Result<usize, String> {
        let start = at;
        at = at
            .checked_add(n)
            .filter(|&end| end <= bytes.len())
            .ok_or("the file ends early")?;
        Ok(start)
    };
    let order = u32_at(bytes, take(4)?) as usize;
    if !(1..=MAX_LM_ORDER).contains(&order) {
        return Err(format!("order {order} is outside 1..={MAX_LM_ORDER}"));
    }
    let name_count = u32_at(bytes, take(4)?) as usize;
    let mut names = Vec::with_capacity(name_count.min(1 << 16));
    for _ in 0..name_count {
        let token = u16_at(bytes, take(2)?);
        let length = bytes[take(1)?] as usize;
        let start = take(length)?;
        let name = std::str::from_utf8(&bytes[start..start + length])
            .map_err(|_| "a phone name is not UTF-8")?;
        names.push((token, name.to_string()));
    }
    let mut counts = Vec::with_capacity(order);
    for _ in 0..order {
        let start = take(8)?;
        let mut count = [0; 8];
        count.copy_from_slice(&bytes[start..start + 8]);
        let count = usize::try_from(u64::from_le_bytes(count)).map_err(|_| "a count overflows")?;
        if count > u32::MAX as usize {
            return Err("a level holds more than 2^32 entries".into());
        }
        counts.push(count);
    }
    let mut levels = Vec::with_capacity(order);
    for (i, &count) in counts.iter().enumerate() {
        let top = i + 1 == order;
        let size = |width: usize| count.checked_mul(width).ok_or("a level overflows");
        let words = take(size(2)?)?;
        let probs = take(size(8)?)?;
        let (backoffs, children) = if top {
            (None, None)
        } else {
            let backoffs = take(size(8)?)?;
            let children = take(count.checked_add(1).ok_or("overflow")? * 4)?;
            (Some(backoffs), Some(children))
        };
        levels.push(Level {
            count,
            words,
            probs,
            backoffs,
            children,
        });
    }
    if at != bytes.len() {
        return Err(format!("{} bytes after the last level", bytes.len() - at));
    }
    if !check_arrays {
        return Ok((levels, names));
    }
    // Level 1: strictly increasing tokens; each level's children tile the next level.
    let increasing = |level: &Level, start: usize, end: usize| {
        (start + 1..end)
            .all(|i| u16_at(bytes, level.words + 2 * (i - 1)) < u16_at(bytes, level.words + 2 * i))
    };
    if !increasing(&levels[0], 0, levels[0].count) {
        return Err("level 1 is not sorted".into());
    }
    for n in 1..order {
        let (level, next) = (&levels[n - 1], &levels[n]);
        let children = level.children.unwrap_or(0);
        let child = |i: usize| u32_at(bytes, children + 4 * i) as usize;
        if child(0) != 0 || child(level.count) != next.count {
            return Err(format!("level {n}'s children do not cover level {}", n + 1));
        }
        for i in 0..level.count {
            let (start, end) = (child(i), child(i + 1));
            if end < start || end > next.count {
                return Err(format!("level {n} entry {i} has a bad child range"));
            }
            if !increasing(next, start, end) {
                return Err(format!("level {} is not sorted", n + 1));
            }
        }
    }
    Ok((levels, names))
}

/// Write n-grams (per order, tokens oldest first, in any order) as a binary LM. `names` names the
/// phone tokens. Prefixes missing from the input get placeholders.
pub fn write(ngrams: &[Vec<(Vec<Token>, NgramEntry)>], names: &[(Token, String)]) -> Vec<u8> {
    let order = ngrams.len();
    // Each level as sorted keys with entries, placeholders added top-down.
    let mut levels: Vec<std::collections::BTreeMap<Vec<Token>, NgramEntry>> = ngrams
        .iter()
        .map(|level| level.iter().cloned().collect())
        .collect();
    for n in (2..=order).rev() {
        let prefixes: Vec<Vec<Token>> = levels[n - 1]
            .keys()
            .map(|key| key[..n - 1].to_vec())
            .collect();
        for prefix in prefixes {
            levels[n - 2].entry(prefix).or_insert(NgramEntry {
                log_prob: f64::NAN,
                log_backoff: 0.0,
            });
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(order as u32).to_le_bytes());
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for (token, name) in names {
        let name = &name.as_bytes()[..name.len().min(255)];
        out.extend_from_slice(&token.to_le_bytes());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
    }
    for level in &levels {
        out.extend_from_slice(&(level.len() as u64).to_le_bytes());
    }
    for (i, level) in levels.iter().enumerate() {
        for key in level.keys() {
            out.extend_from_slice(&key[key.len() - 1].to_le_bytes());
        }
        for entry in level.values() {
            out.extend_from_slice(&entry.log_prob.to_le_bytes());
        }
        if i + 1 < order {
            for entry in level.values() {
                out.extend_from_slice(&entry.log_backoff.to_le_bytes());
            }
            // Children: both levels are sorted, so each entry's extensions are the next run of
            // the level below that starts with its key.
            let next: Vec<&Vec<Token>> = levels[i + 1].keys().collect();
            let mut position = 0u32;
            out.extend_from_slice(&position.to_le_bytes());
            for key in level.keys() {
                while (position as usize) < next.len()
                    && next[position as usize][..key.len()] == key[..]
                {
                    position += 1;
                }
                out.extend_from_slice(&position.to_le_bytes());
            }
        }
    }
    out
}
