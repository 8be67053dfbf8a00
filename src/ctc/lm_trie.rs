//! The binary phone-LM format: the n-grams as a trie of sorted arrays (KenLM's "trie" layout), scored
//! where it lies — in the program's own read-only data for the built-in LM, or in one buffer read
//! from a file — so that loading parses nothing and builds no hash table. Loading the built-in 6-gram
//! (781k n-grams) from gzipped ARPA took ≈ 0.25 s and 50 MB; from this format it takes a structural
//! check of the arrays.
//!
//! Values are stored so that every score is the f64 the hash maps hold, to the last bit, and ARPA text
//! converts there and back unchanged — but no wider than that needs. ARPA files carry log10 values
//! with a fixed number of decimals (7 from phonrec, SRILM and KenLM), and `(q / 1e7) · ln 10` for the
//! integer `q` is exactly the f64 that parsing the decimal text and multiplying by ln 10 gives (both
//! divisions are correctly rounded). So when every value passes that round trip, the file stores `q`
//! as an i32 (4 bytes instead of 8); otherwise f64. Likewise tokens take one byte when the phones fit.
//! The built-in LM is 7.3 MB this way against 12.8 MB with u16 tokens and f64 values, which keeps the
//! model and the LM compiled into phonrec within 20 MB.
//!
//! Layout, all numbers little-endian:
//!
//! ```text
//! magic      8 bytes  "PHONRLM" then format version (2; version 1 = encoding 0, no encoding field)
//! order      u32      n-gram order N (1..=8)
//! encoding   u32      bit 0: tokens are u8 (phone ids < 254, <s> = 254, </s> = 255), else u16;
//!                     bit 1: values are i32 q = round(log10 value × 1e7) (i32::MIN: a placeholder's
//!                     missing probability, i32::MIN + 1: −0), else f64 ln values (NaN: placeholder)
//! names      u32      number of named tokens, then per token: u16 token, u8 length, UTF-8 name
//! counts     u64 × N  entries per level (n-grams of order n, plus placeholders, see below)
//! level n    words    token × count        the n-gram's last token
//!            probs    value × count        ln P(last | the others)
//!            (n < N)  backoffs value × count   ln back-off weight of the n-gram as a history
//!            (n < N)  children u32 × (count + 1)  level n+1 entries [children[i], children[i+1])
//!                                         extend entry i
//! ```
//!
//! Level 1 holds the unigrams sorted by token; the entries of level n + 1 are sorted by (parent entry,
//! last token), so the children of an entry are one sorted run, found by binary search. An n-gram
//! listed without its (n − 1)-gram prefix (ARPA files may do that) gets a placeholder for the prefix:
//! no probability (not stored) and back-off 0 (ln 1), exactly what a lookup of the missing prefix
//! means. Tokens are a phone inventory's ids, named in the header, plus the sentence markers; a model
//! with other ids for the same names is served through a token map (see `PhoneLm`).

use std::path::Path;

use super::lm::{NgramEntry, Token, MAX_LM_ORDER, SENTENCE_END, SENTENCE_START};
use crate::error::{Error, Result};

/// The first 8 bytes of a binary phone LM: the name and the format version.
pub const MAGIC: [u8; 8] = *b"PHONRLM\x02";

/// Encoding bit: tokens stored as one byte.
const NARROW_TOKENS: u32 = 1;
/// Encoding bit: values stored as i32 multiples of 1e-7 in log10.
const FIXED_VALUES: u32 = 2;
/// Fixed-point values: the scale of log10 values, and the codes that are not numbers.
const FIXED_SCALE: f64 = 1e7;
const FIXED_MISSING: i32 = i32::MIN;
const FIXED_NEGATIVE_ZERO: i32 = i32::MIN + 1;
/// One-byte tokens: the sentence markers' bytes (phone ids stay below them).
const NARROW_START: u8 = 254;
const NARROW_END: u8 = 255;

/// How a file stores tokens and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Encoding {
    narrow_tokens: bool,
    fixed_values: bool,
}

impl Encoding {
    fn token_bytes(self) -> usize {
        if self.narrow_tokens {
            1
        } else {
            2
        }
    }

    fn value_bytes(self) -> usize {
        if self.fixed_values {
            4
        } else {
            8
        }
    }

    fn bits(self) -> u32 {
        (self.narrow_tokens as u32 * NARROW_TOKENS) | (self.fixed_values as u32 * FIXED_VALUES)
    }

    /// The narrowest encoding that keeps every token and every value exactly.
    fn for_ngrams<'a>(
        mut tokens: impl Iterator<Item = Token>,
        values: impl Iterator<Item = &'a NgramEntry>,
    ) -> Self {
        Encoding {
            narrow_tokens: tokens.all(|token| narrow_token(token).is_some()),
            fixed_values: values
                .flat_map(|entry| [entry.log_prob, entry.log_backoff])
                .all(|value| value.is_nan() || to_fixed(value).is_some()),
        }
    }
}

fn narrow_token(token: Token) -> Option<u8> {
    match token {
        SENTENCE_START => Some(NARROW_START),
        SENTENCE_END => Some(NARROW_END),
        phone if phone < NARROW_START as Token => Some(phone as u8),
        _ => None,
    }
}

fn wide_token(byte: u8) -> Token {
    match byte {
        NARROW_START => SENTENCE_START,
        NARROW_END => SENTENCE_END,
        phone => phone as Token,
    }
}

/// The fixed-point code of an ln value, if decoding it gives back exactly the same f64.
fn to_fixed(value: f64) -> Option<i32> {
    if value == 0.0 && value.is_sign_negative() {
        return Some(FIXED_NEGATIVE_ZERO);
    }
    let scaled = (value / std::f64::consts::LN_10 * FIXED_SCALE).round();
    if !(scaled > (FIXED_NEGATIVE_ZERO as f64) && scaled <= i32::MAX as f64) {
        return None;
    }
    let code = scaled as i32;
    (from_fixed(code).to_bits() == value.to_bits()).then_some(code)
}

/// The ln value of a fixed-point code: the same operations as parsing ARPA text (`log10 · ln 10`).
fn from_fixed(code: i32) -> f64 {
    match code {
        FIXED_MISSING => f64::NAN,
        FIXED_NEGATIVE_ZERO => -0.0,
        q => q as f64 / FIXED_SCALE * std::f64::consts::LN_10,
    }
}

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
    encoding: Encoding,
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

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    bytes.get(at..at + 4).map_or(FIXED_MISSING, |b| {
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    })
}

/// Token `index` of the array at `at`.
fn token_at(bytes: &[u8], encoding: Encoding, at: usize, index: usize) -> Token {
    if encoding.narrow_tokens {
        bytes
            .get(at + index)
            .map_or(Token::MAX, |&byte| wide_token(byte))
    } else {
        u16_at(bytes, at + 2 * index)
    }
}

/// Value `index` of the array at `at`, as the ln value.
fn value_at(bytes: &[u8], encoding: Encoding, at: usize, index: usize) -> f64 {
    if encoding.fixed_values {
        from_fixed(i32_at(bytes, at + 4 * index))
    } else {
        f64_at(bytes, at + 8 * index)
    }
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
        let (encoding, levels, names) =
            parse_layout(bytes.get(), check_arrays).map_err(|reason| Error::Parse {
                path: source.to_path_buf(),
                line: None,
                reason: format!("not a valid binary phone LM: {reason}"),
            })?;
        Ok(LmTrie {
            bytes,
            encoding,
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
            let found = token_at(bytes, self.encoding, level.words, middle);
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
            log_prob: value_at(bytes, self.encoding, level.probs, index),
            log_backoff: level
                .backoffs
                .map_or(0.0, |at| value_at(bytes, self.encoding, at, index)),
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
                1 => keys.extend(
                    (0..level.count).map(|i| vec![token_at(bytes, self.encoding, level.words, i)]),
                ),
                _ => {
                    for (parent, prefix) in above.iter().enumerate() {
                        let (start, end) = self.children(n, Some(parent));
                        for i in start..end {
                            let mut key = prefix.clone();
                            key.push(token_at(bytes, self.encoding, level.words, i));
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
) -> std::result::Result<(Encoding, Vec<Level>, Names), String> {
    if !bytes.starts_with(&MAGIC[..7]) {
        return Err("it does not start with PHONRLM".into());
    }
    let version = bytes.get(7).copied().unwrap_or(0);
    if !(1..=MAGIC[7]).contains(&version) {
        return Err(format!(
            "format version {version} (this phonrec reads versions 1 to {})",
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
    let bits = if version == 1 {
        0
    } else {
        u32_at(bytes, take(4)?)
    };
    if bits & !(NARROW_TOKENS | FIXED_VALUES) != 0 {
        return Err(format!("unknown encoding bits {bits:#x}"));
    }
    let encoding = Encoding {
        narrow_tokens: bits & NARROW_TOKENS != 0,
        fixed_values: bits & FIXED_VALUES != 0,
    };
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
        let words = take(size(encoding.token_bytes())?)?;
        let probs = take(size(encoding.value_bytes())?)?;
        let (backoffs, children) = if top {
            (None, None)
        } else {
            let backoffs = take(size(encoding.value_bytes())?)?;
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
        return Ok((encoding, levels, names));
    }
    // Level 1: strictly increasing tokens; each level's children tile the next level.
    let token = |level: &Level, i: usize| token_at(bytes, encoding, level.words, i);
    let increasing = |level: &Level, start: usize, end: usize| {
        (start + 1..end).all(|i| token(level, i - 1) < token(level, i))
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
    Ok((encoding, levels, names))
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
    let encoding = Encoding::for_ngrams(
        levels
            .iter()
            .flat_map(|level| level.keys().map(|key| key[key.len() - 1])),
        levels.iter().flat_map(|level| level.values()),
    );
    write_levels(&levels, names, encoding)
}

/// Write sorted levels (placeholders included) with the given encoding, which must hold them.
fn write_levels(
    levels: &[std::collections::BTreeMap<Vec<Token>, NgramEntry>],
    names: &[(Token, String)],
    encoding: Encoding,
) -> Vec<u8> {
    let order = levels.len();
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(order as u32).to_le_bytes());
    out.extend_from_slice(&encoding.bits().to_le_bytes());
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for (token, name) in names {
        let name = &name.as_bytes()[..name.len().min(255)];
        out.extend_from_slice(&token.to_le_bytes());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
    }
    for level in levels {
        out.extend_from_slice(&(level.len() as u64).to_le_bytes());
    }
    let push_value = |out: &mut Vec<u8>, value: f64| {
        if !encoding.fixed_values {
            out.extend_from_slice(&value.to_le_bytes());
        } else if value.is_nan() {
            out.extend_from_slice(&FIXED_MISSING.to_le_bytes());
        } else {
            // `for_ngrams` checked that every value has an exact code.
            out.extend_from_slice(&to_fixed(value).unwrap_or(FIXED_MISSING).to_le_bytes());
        }
    };
    for (i, level) in levels.iter().enumerate() {
        for key in level.keys() {
            let token = key[key.len() - 1];
            match narrow_token(token).filter(|_| encoding.narrow_tokens) {
                Some(byte) => out.push(byte),
                None => out.extend_from_slice(&token.to_le_bytes()),
            }
        }
        for entry in level.values() {
            push_value(&mut out, entry.log_prob);
        }
        if i + 1 < order {
            for entry in level.values() {
                push_value(&mut out, entry.log_backoff);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_codes_decode_to_the_values_parsed_from_arpa_text() {
        // ARPA text with 7 decimals → f64 → ln, as the reader does; the code must give it back
        // bit for bit, and so must every value that came from such text.
        for text in [
            "-1.5308695",
            "-3.6528524",
            "-0.0000001",
            "-99",
            "0",
            "-0.0000000",
            "-12.25",
        ] {
            let log10: f64 = text.parse().unwrap();
            let ln = log10 * std::f64::consts::LN_10;
            let code = to_fixed(ln).unwrap_or_else(|| panic!("{text} has no exact code"));
            assert_eq!(from_fixed(code).to_bits(), ln.to_bits(), "{text}");
        }
        // Values estimated in f64 (not from 7-decimal text) generally have none: the writer then
        // keeps f64.
        assert!(to_fixed((0.3f64).ln()).is_none());
        assert!(to_fixed(-1e12).is_none());
        assert!(from_fixed(FIXED_MISSING).is_nan());
    }

    #[test]
    fn version_1_files_and_every_encoding_score_alike() {
        // Values from 7-decimal text (fixed codes exist) over two phones and the markers.
        let value = |log10: f64| log10 * std::f64::consts::LN_10;
        let entry = |p: f64, b: f64| NgramEntry {
            log_prob: value(p),
            log_backoff: value(b),
        };
        let ngrams = vec![
            vec![
                (vec![SENTENCE_START], entry(-99.0, -0.25)),
                (vec![1], entry(-0.5, -0.125)),
                (vec![2], entry(-0.75, -0.0625)),
                (vec![SENTENCE_END], entry(-0.6, 0.0)),
            ],
            vec![
                (vec![SENTENCE_START, 1], entry(-0.1, 0.0)),
                (vec![1, 2], entry(-0.2, 0.0)),
                (vec![2, SENTENCE_END], entry(-0.3, 0.0)),
            ],
        ];
        let names = vec![(1, "a".to_string()), (2, "b".to_string())];
        let v2 = write(&ngrams, &names);
        let narrow = LmTrie::from_vec(v2.clone(), Path::new("x")).unwrap();
        assert!(narrow.encoding.narrow_tokens && narrow.encoding.fixed_values);
        let levels: Vec<std::collections::BTreeMap<Vec<Token>, NgramEntry>> = ngrams
            .iter()
            .map(|level| level.iter().cloned().collect())
            .collect();
        let wide = Encoding {
            narrow_tokens: false,
            fixed_values: false,
        };
        // Version 1 is version 2 with encoding 0 and no encoding field.
        let mut v1 = write_levels(&levels, &names, wide);
        v1.drain(12..16);
        v1[7] = 1;
        let old = LmTrie::from_vec(v1, Path::new("x")).unwrap();
        assert_eq!(old.encoding, wide);
        assert_eq!(old.names(), narrow.names());
        let tokens = [SENTENCE_START, 1, 2, SENTENCE_END];
        for &b in &tokens {
            for &c in &tokens {
                let (x, y) = (narrow.log_prob(&[b], c, -1e9), old.log_prob(&[b], c, -1e9));
                assert_eq!(x.to_bits(), y.to_bits(), "{b} {c}");
            }
        }
        assert_eq!(narrow.ngrams().len(), 2);
        assert_eq!(
            format!("{:?}", narrow.ngrams()),
            format!("{:?}", old.ngrams())
        );
        assert!(v2.len() < write_levels(&levels, &names, wide).len());
    }

    #[test]
    fn one_byte_tokens_keep_the_order_of_two_byte_ones() {
        let tokens = [1, 2, 39, 253, SENTENCE_START, SENTENCE_END];
        let bytes: Vec<u8> = tokens.iter().map(|&t| narrow_token(t).unwrap()).collect();
        assert!(bytes.windows(2).all(|w| w[0] < w[1]));
        assert!(tokens
            .iter()
            .zip(&bytes)
            .all(|(&token, &byte)| wide_token(byte) == token));
        assert_eq!(narrow_token(254), None);
    }
}
