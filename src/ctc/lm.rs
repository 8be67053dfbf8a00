//! Stage 4 (decoding), phone n-gram language model: training label sequences -> ln P(phone | previous
//! phones), fused into the prefix beam search.
//!
//! Smoothing is interpolated Witten–Bell (Witten & Bell 1991; SRILM `ngram-count -wbdiscount -interpolate`):
//! for a history `h` seen `c(h)` times with `u(h)` distinct followers,
//! `P(w | h) = (c(h, w) + u(h) · P(w | h')) / (c(h) + u(h))`, where `h'` drops the oldest phone and the
//! unigrams interpolate with the uniform distribution over the vocabulary (every phone plus `</s>`), so
//! unseen phones keep a non-zero probability. For an unseen `(h, w)` this is exactly the back-off form
//! `bow(h) · P(w | h')` with `bow(h) = u(h) / (c(h) + u(h))`, which is how the model is stored: ARPA text
//! (log10 probabilities and back-off weights, `<s>` and `</s>` for sentence start and end), readable by
//! SRILM, KenLM and friends. Internally probabilities are natural logs, like the acoustic scores.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, Write};
use std::path::Path;

use super::lm_trie::{self, LmTrie};
use crate::error::{Error, Result};
use crate::phones::{PhoneId, PhoneSet, BLANK};

/// The highest n-gram order [`PhoneLm`] estimates or reads.
pub const MAX_LM_ORDER: usize = 8;

/// Longest ARPA line read (an 8-gram of long phone names with two numbers is under 200 bytes).
const MAX_ARPA_LINE_BYTES: usize = 64 * 1024;
/// Most n-grams of one order reserved for up front, whatever `\data\` declares (the table still
/// grows past it when the file really lists more).
const MAX_RESERVED_NGRAMS: usize = 1 << 20;
/// Largest log10 probability accepted: 0 plus rounding.
const MAX_LOG10_PROB: f64 = 1e-4;

/// ARPA's log10 probability for "never" (the `<s>` unigram, phones missing from a read model).
const NEVER_LOG10: f64 = -99.0;

/// Internal word ids: phones keep their [`PhoneId`] value; the sentence markers take the top two
/// values below [`NO_TOKEN`], so an inventory may hold up to [`MAX_LM_PHONES`] entries. 16 bits a token
/// keep a key at 16 bytes: a 780k-n-gram model's maps are a third smaller than with 32-bit tokens.
pub(super) type Token = u16;
pub(super) const SENTENCE_START: Token = Token::MAX - 2;
pub(super) const SENTENCE_END: Token = Token::MAX - 1;
/// Fills the unused tail of an [`NgramKey`].
const NO_TOKEN: Token = Token::MAX;
/// The largest phone inventory (blank included) a [`PhoneLm`] can model.
const MAX_LM_PHONES: usize = SENTENCE_START as usize;

/// An n-gram, oldest token first, padded with [`NO_TOKEN`]: a fixed-size key, so lookups never allocate.
type NgramKey = [Token; MAX_LM_ORDER];

/// Maps keyed by n-grams. The keys are small integers, not attacker-chosen strings, so a multiply-rotate
/// hash (FxHash's) replaces SipHash, which took about a quarter of the time of loading a 780k-n-gram
/// LM in a profile; it also gives the same iteration order in every run.
type NgramMap<V> = HashMap<NgramKey, V, BuildHasherDefault<NgramHasher>>;

/// FxHash-style hasher over an [`NgramKey`]: its length prefix, then its bytes 8 at a time.
#[derive(Default)]
struct NgramHasher(u64);

impl NgramHasher {
    fn add(&mut self, word: u64) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for NgramHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One stored n-gram. Double precision, so that ARPA text (7 decimals of log10, up to 9 significant
/// digits) survives reading, converting to the binary format and writing back unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct NgramEntry {
    /// ln P(last token | the others).
    pub(super) log_prob: f64,
    /// ln of the back-off weight applied when this n-gram is a history whose continuation is not stored.
    pub(super) log_backoff: f64,
}

/// The language-model context after some phones: the last `order − 1` tokens. Cheap to copy; obtained from
/// [`PhoneLm::start`] and [`PhoneLm::score`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LmState {
    /// Most recent token last; only `context[..len]` is used.
    context: [Token; MAX_LM_ORDER - 1],
    len: usize,
}

impl LmState {
    fn tokens(&self) -> &[Token] {
        &self.context[..self.len]
    }
}

/// A phone n-gram language model with back-off (see the module docs for the smoothing).
#[derive(Clone, Debug, PartialEq)]
pub struct PhoneLm {
    order: usize,
    storage: Storage,
}

/// Where the n-grams are: hash maps (estimated, or read from ARPA text) or a binary trie scored in
/// place (see [`lm_trie`](super::lm_trie)).
#[derive(Clone, Debug, PartialEq)]
enum Storage {
    /// `ngrams[n - 1]` holds the n-grams of order n, keyed by the phone set's ids.
    Maps(Vec<NgramMap<NgramEntry>>),
    /// A binary LM; `tokens[phone id]` is the file's token for each of the model's phones
    /// (`NO_TOKEN` for phones the file does not have).
    Trie { trie: LmTrie, tokens: Vec<Token> },
}

fn key(tokens: &[Token]) -> NgramKey {
    let mut key = [NO_TOKEN; MAX_LM_ORDER];
    key[..tokens.len()].copy_from_slice(tokens);
    key
}

fn phone_token(phone: PhoneId) -> Token {
    phone.0
}

/// Refuses inventories whose phone ids would collide with the sentence markers.
fn check_inventory_size(phones: &PhoneSet) -> Result<()> {
    if phones.len() > MAX_LM_PHONES {
        return Err(Error::InvalidOptions {
            what: "phone LM",
            reason: format!(
                "{} phones (blank included) is more than a phone LM can hold ({MAX_LM_PHONES})",
                phones.len()
            ),
        });
    }
    Ok(())
}

impl PhoneLm {
    /// Estimates an n-gram model of `order` (1 to [`MAX_LM_ORDER`]; 3–6 suit phones) from training label
    /// sequences over the phones of `phones` (the blank excluded). Each sequence is one sentence, wrapped
    /// in `<s>` … `</s>`.
    pub fn estimate(sequences: &[Vec<PhoneId>], phones: &PhoneSet, order: usize) -> Result<Self> {
        Self::estimate_pruned(sequences, phones, order, 1)
    }

    /// [`estimate`](Self::estimate), then drop the n-grams of order 3 and above seen fewer than
    /// `min_count` times (SRILM's `-gtNmin` count cut-offs): a long phone n-gram model mostly holds
    /// n-grams seen once, which cost memory and loading time but carry little. Kept n-grams keep their
    /// probabilities; every history's back-off weight is recomputed so that its distribution still sums
    /// to one: `bow(h) = (1 − Σ_kept P(w | h)) / (1 − Σ_kept P(w | h'))`, which for an unpruned model is
    /// Witten–Bell's `u(h) / (c(h) + u(h))`.
    pub fn estimate_pruned(
        sequences: &[Vec<PhoneId>],
        phones: &PhoneSet,
        order: usize,
        min_count: u64,
    ) -> Result<Self> {
        check_inventory_size(phones)?;
        if !(1..=MAX_LM_ORDER).contains(&order) {
            return Err(Error::InvalidOptions {
                what: "phone LM",
                reason: format!("order {order} is outside 1..={MAX_LM_ORDER}"),
            });
        }
        for phone in sequences.iter().flatten() {
            if *phone == BLANK || phone.index() >= phones.len() {
                return Err(Error::InvalidPhoneId {
                    id: phone.0,
                    num_classes: phones.len(),
                });
            }
        }
        // counts[n - 1]: occurrences of each n-gram, never predicting <s>.
        let mut counts: Vec<NgramMap<u64>> = vec![NgramMap::default(); order];
        let mut tokens = Vec::new();
        for sequence in sequences {
            tokens.clear();
            tokens.push(SENTENCE_START);
            tokens.extend(sequence.iter().map(|p| phone_token(*p)));
            tokens.push(SENTENCE_END);
            for end in 1..tokens.len() {
                for n in 1..=order.min(end + 1) {
                    *counts[n - 1]
                        .entry(key(&tokens[end + 1 - n..=end]))
                        .or_default() += 1;
                }
            }
        }

        let mut ngrams = vec![NgramMap::default(); order];
        // Unigrams: Witten–Bell interpolated with the uniform distribution over phones and </s>.
        let vocabulary: Vec<Token> = (1..phones.len())
            .map(|id| id as Token)
            .chain([SENTENCE_END])
            .collect();
        let total: u64 = counts[0].values().sum();
        let distinct = counts[0].len() as f64;
        let uniform = 1.0 / vocabulary.len() as f64;
        for &word in &vocabulary {
            let count = counts[0].get(&key(&[word])).copied().unwrap_or(0) as f64;
            let prob = if total == 0 {
                uniform
            } else {
                (count + distinct * uniform) / (total as f64 + distinct)
            };
            ngrams[0].insert(key(&[word]), entry(prob.ln()));
        }
        ngrams[0].insert(key(&[SENTENCE_START]), entry(from_log10(NEVER_LOG10)));
        let mut lm = PhoneLm {
            order,
            storage: Storage::Maps(ngrams),
        };

        // Higher orders, each interpolated with the finished model of the orders below it.
        for n in 2..=order {
            let mut histories: NgramMap<(u64, u64)> = NgramMap::default(); // (c(h), u(h))
            for (ngram, &count) in &counts[n - 1] {
                let stats = histories.entry(key(&ngram[..n - 1])).or_default();
                stats.0 += count;
                stats.1 += 1;
            }
            let mut entries =
                NgramMap::with_capacity_and_hasher(counts[n - 1].len(), Default::default());
            for (ngram, &count) in &counts[n - 1] {
                let (history_count, followers) = histories[&key(&ngram[..n - 1])];
                let lower = lm.log_prob_tokens(&ngram[1..n - 1], ngram[n - 1]).exp();
                let prob =
                    (count as f64 + followers as f64 * lower) / (history_count + followers) as f64;
                entries.insert(*ngram, entry(prob.ln()));
            }
            let ngrams = lm.maps_mut();
            ngrams[n - 1] = entries;
            for (history, (history_count, followers)) in histories {
                let backoff = followers as f64 / (history_count + followers) as f64;
                if let Some(stored) = ngrams[n - 2].get_mut(&history) {
                    stored.log_backoff = backoff.ln();
                }
            }
        }
        if min_count > 1 && order >= 3 {
            let ngrams = lm.maps_mut();
            for n in 3..=order {
                ngrams[n - 1].retain(|ngram, _| counts[n - 1][ngram] >= min_count);
            }
            // Bottom-up: P(w | h') below order n is final when order n's back-offs are recomputed.
            for n in 3..=order {
                lm.renormalise_backoffs(n);
            }
        }
        Ok(lm)
    }

    /// Set the back-off weights of the histories of order `n − 1` so that, with the n-grams of order
    /// `n` as stored, `P(· | h)` sums to one (see [`estimate_pruned`](Self::estimate_pruned)).
    fn renormalise_backoffs(&mut self, n: usize) {
        // Per history: (Σ P(w | h), Σ P(w | h')) over its stored followers.
        // Summed in n-gram order, not hash order: float sums depend on their order, and the same data
        // must always give the same file.
        let Storage::Maps(ngrams) = &self.storage else {
            return;
        };
        let mut ordered: Vec<(&NgramKey, &NgramEntry)> = ngrams[n - 1].iter().collect();
        ordered.sort_unstable_by_key(|(ngram, _)| **ngram);
        let mut sums: NgramMap<(f64, f64)> = NgramMap::default();
        for (ngram, stored) in ordered {
            let lower = self.log_prob_tokens(&ngram[1..n - 1], ngram[n - 1]).exp();
            let sum = sums.entry(key(&ngram[..n - 1])).or_default();
            sum.0 += stored.log_prob.exp();
            sum.1 += lower;
        }
        for (history, stored) in self.maps_mut()[n - 2].iter_mut() {
            let (kept, lower) = sums.get(history).copied().unwrap_or((0.0, 0.0));
            // Both sums are below one for a history with any unseen follower; clamp rounding.
            let backoff = (1.0 - kept).max(1e-12) / (1.0 - lower).max(1e-12);
            stored.log_backoff = backoff.ln();
        }
    }

    /// The hash maps of a model being estimated (estimation makes maps; a trie would be converted).
    fn maps_mut(&mut self) -> &mut Vec<NgramMap<NgramEntry>> {
        if let Storage::Trie { trie, tokens } = &self.storage {
            let maps = trie_to_maps_with(trie, tokens);
            self.storage = Storage::Maps(maps);
        }
        match &mut self.storage {
            Storage::Maps(ngrams) => ngrams,
            Storage::Trie { .. } => unreachable!("replaced by maps above"),
        }
    }

    /// The n-gram order (2 for a bigram model).
    pub fn order(&self) -> usize {
        self.order
    }

    /// The state at the start of a sentence (after `<s>`).
    pub fn start(&self) -> LmState {
        let mut state = LmState {
            context: [NO_TOKEN; MAX_LM_ORDER - 1],
            len: 0,
        };
        if self.order > 1 {
            state.context[0] = SENTENCE_START;
            state.len = 1;
        }
        state
    }

    /// ln P(`phone` | `state`) and the state after it.
    pub fn score(&self, state: &LmState, phone: PhoneId) -> (f64, LmState) {
        let token = match &self.storage {
            Storage::Maps(_) => phone_token(phone),
            Storage::Trie { tokens, .. } => tokens.get(phone.index()).copied().unwrap_or(NO_TOKEN),
        };
        let log_prob = self.log_prob_tokens(state.tokens(), token);
        let mut next = *state;
        let keep = self.order - 1;
        if keep > 0 {
            if next.len == keep {
                next.context.copy_within(1..keep, 0);
                next.len -= 1;
            }
            next.context[next.len] = token;
            next.len += 1;
        }
        (log_prob, next)
    }

    /// The phones of `phones` (blank and silence aside) this LM has no unigram for: a search fused
    /// with it will never output them, so an LM estimated for another inventory, or edited, says
    /// so before it silently removes a phone from every transcript.
    pub fn unlisted_phones(&self, phones: &PhoneSet) -> Vec<PhoneId> {
        let never = from_log10(NEVER_LOG10);
        (1..phones.len())
            .filter_map(|index| u16::try_from(index).ok().map(PhoneId))
            .filter(|&phone| Some(phone) != phones.silence())
            .filter(|&phone| self.score(&self.start_empty(), phone).0 <= never)
            .collect()
    }

    /// A state with no history (not even `<s>`): unigram scores.
    fn start_empty(&self) -> LmState {
        LmState {
            context: [NO_TOKEN; MAX_LM_ORDER - 1],
            len: 0,
        }
    }

    /// ln P(`</s>` | `state`): the cost of ending the sentence here.
    pub fn score_end(&self, state: &LmState) -> f64 {
        self.log_prob_tokens(state.tokens(), SENTENCE_END)
    }

    /// ln P(`phones`, then `</s>`) of a whole sentence.
    pub fn sentence_log_prob(&self, phones: &[PhoneId]) -> f64 {
        let mut state = self.start();
        let mut total = 0.0;
        for &phone in phones {
            let (log_prob, next) = self.score(&state, phone);
            total += log_prob;
            state = next;
        }
        total + self.score_end(&state)
    }

    /// Perplexity per predicted token (each phone and each `</s>`) over some sentences, e.g. a dev set's
    /// labels: `exp(−Σ ln P / tokens)`. 1 for no sentences.
    pub fn perplexity(&self, sentences: &[Vec<PhoneId>]) -> f64 {
        let tokens: usize = sentences.iter().map(|s| s.len() + 1).sum();
        if tokens == 0 {
            return 1.0;
        }
        let log_prob: f64 = sentences.iter().map(|s| self.sentence_log_prob(s)).sum();
        (-log_prob / tokens as f64).exp()
    }

    /// Back-off lookup: the longest stored `(history suffix, word)`, times the back-off weights of the
    /// longer histories that were not followed by `word`. `history` is oldest first.
    fn log_prob_tokens(&self, history: &[Token], word: Token) -> f64 {
        let ngrams = match &self.storage {
            Storage::Maps(ngrams) => ngrams,
            Storage::Trie { trie, .. } => {
                return trie.log_prob(history, word, from_log10(NEVER_LOG10))
            }
        };
        let mut log_backoff = 0.0;
        let mut ngram = [NO_TOKEN; MAX_LM_ORDER];
        for skip in 0..=history.len() {
            let suffix = &history[skip..];
            ngram[..suffix.len()].copy_from_slice(suffix);
            ngram[suffix.len()] = word;
            ngram[suffix.len() + 1..].fill(NO_TOKEN);
            if let Some(found) = ngrams[suffix.len()].get(&ngram) {
                return log_backoff + found.log_prob;
            }
            if !suffix.is_empty() {
                if let Some(stored) = ngrams[suffix.len() - 1].get(&key(suffix)) {
                    log_backoff += stored.log_backoff;
                }
            }
        }
        from_log10(NEVER_LOG10)
    }

    /// Writes the model as ARPA text (log10 values), n-grams sorted by id for reproducible files.
    pub fn write_arpa(&self, phones: &PhoneSet, out: &mut dyn Write) -> std::io::Result<()> {
        let levels = self.sorted_ngrams();
        let mut text = String::from("\\data\\\n");
        for (n, ngrams) in levels.iter().enumerate() {
            let _ = writeln!(text, "ngram {}={}", n + 1, ngrams.len());
        }
        for (n, ngrams) in levels.iter().enumerate() {
            let _ = write!(text, "\n\\{}-grams:\n", n + 1);
            let has_backoff = n + 1 < self.order;
            for (key, entry) in ngrams {
                let words: Vec<&str> = key.iter().map(|t| token_name(*t, phones)).collect();
                let _ = write!(text, "{:.7}\t{}", to_log10(entry.log_prob), words.join(" "));
                if has_backoff {
                    let _ = write!(text, "\t{:.7}", to_log10(entry.log_backoff));
                }
                text.push('\n');
            }
        }
        text.push_str("\n\\end\\\n");
        out.write_all(text.as_bytes())
    }

    /// Every n-gram by order, as tokens of the phone set's ids (oldest first), sorted.
    fn sorted_ngrams(&self) -> Vec<Vec<(Vec<Token>, NgramEntry)>> {
        let maps;
        let ngrams = match &self.storage {
            Storage::Maps(ngrams) => ngrams,
            Storage::Trie { trie, tokens } => {
                maps = trie_to_maps_with(trie, tokens);
                &maps
            }
        };
        ngrams
            .iter()
            .enumerate()
            .map(|(n, level)| {
                let mut sorted: Vec<(Vec<Token>, NgramEntry)> = level
                    .iter()
                    .map(|(key, entry)| (key[..=n].to_vec(), *entry))
                    .collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                sorted
            })
            .collect()
    }

    /// The model in phonrec's binary format (a trie of sorted arrays, `src/ctc/lm_trie.rs`), its
    /// tokens named by `phones`.
    pub fn binary_bytes(&self, phones: &PhoneSet) -> Vec<u8> {
        let names: Vec<(Token, String)> = (1..phones.len())
            .map(|id| (id as Token, phones.name(PhoneId(id as u16)).to_string()))
            .collect();
        lm_trie::write(&self.sorted_ngrams(), &names)
    }

    /// Reads a binary LM (from `phonrec lm --output x.bin`) held in the program's own data, scoring
    /// it in place: nothing is parsed or copied. Its phone names must be phones of `phones`.
    pub fn from_binary_static(
        bytes: &'static [u8],
        phones: &PhoneSet,
        source: &Path,
    ) -> Result<Self> {
        Self::with_trie(LmTrie::from_static(bytes, source)?, phones, source)
    }

    /// A binary LM (its phone names must be phones of `phones`), or ARPA text, plain or gzipped,
    /// held in memory.
    pub fn from_bytes(bytes: &[u8], phones: &PhoneSet, source: &Path) -> Result<Self> {
        if LmTrie::is_binary(bytes) {
            return Self::with_trie(LmTrie::from_vec(bytes.to_vec(), source)?, phones, source);
        }
        Self::from_arpa_bytes(bytes, phones, source)
    }

    fn with_trie(trie: LmTrie, phones: &PhoneSet, source: &Path) -> Result<Self> {
        check_inventory_size(phones)?;
        let mut tokens = vec![NO_TOKEN; phones.len()];
        for (token, name) in trie.names() {
            match phones.id(name).filter(|id| *id != BLANK) {
                Some(id) => tokens[id.index()] = *token,
                None => {
                    return Err(Error::UnknownPhone {
                        phone: name.clone(),
                        path: source.to_path_buf(),
                        line: None,
                    })
                }
            }
        }
        Ok(PhoneLm {
            order: trie.order(),
            storage: Storage::Trie { trie, tokens },
        })
    }

    /// Saves the model: binary (see [`binary_bytes`](Self::binary_bytes)) when `path` ends in
    /// `.bin`, else as an ARPA file, gzip-compressed when `path` ends in `.gz` (as SRILM and KenLM
    /// write and read `.arpa.gz`; phone ARPA text shrinks about threefold).
    pub fn save(&self, path: &Path, phones: &PhoneSet) -> Result<()> {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
        {
            return std::fs::write(path, self.binary_bytes(phones)).map_err(|e| Error::io(path, e));
        }
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut out = std::io::BufWriter::new(file);
        let written = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
        {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::best());
            self.write_arpa(phones, &mut gz)
                .and_then(|()| gz.finish())
                .and_then(|mut out| out.flush())
        } else {
            self.write_arpa(phones, &mut out).and_then(|()| out.flush())
        };
        written.map_err(|e| Error::io(path, e))
    }

    /// Loads a binary LM or an ARPA file whose words are phones of `phones` (plus `<s>`, `</s>`;
    /// `<unk>` lines are skipped). Gzip-compressed ARPA and the binary format are recognised by their
    /// content, whatever the file's name.
    pub fn load(path: &Path, phones: &PhoneSet) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = std::io::BufReader::new(file);
        let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        if LmTrie::is_binary(head) {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            return Self::with_trie(LmTrie::from_vec(bytes, path)?, phones, path);
        }
        Self::read_arpa_maybe_gzip(reader, phones, path)
    }

    /// Reads ARPA text held in memory, plain or gzip-compressed; `source` names it in error messages.
    pub fn from_arpa_bytes(bytes: &[u8], phones: &PhoneSet, source: &Path) -> Result<Self> {
        Self::read_arpa_maybe_gzip(bytes, phones, source)
    }

    fn read_arpa_maybe_gzip(
        mut reader: impl BufRead,
        phones: &PhoneSet,
        source: &Path,
    ) -> Result<Self> {
        const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
        let head = reader.fill_buf().map_err(|e| Error::io(source, e))?;
        if head.starts_with(&GZIP_MAGIC) {
            let text = flate2::bufread::MultiGzDecoder::new(reader);
            Self::read_arpa(
                &mut std::io::BufReader::with_capacity(1 << 16, text),
                phones,
                source,
            )
        } else {
            Self::read_arpa(&mut reader, phones, source)
        }
    }

    /// Reads ARPA text; `source` names the input in error messages.
    pub fn read_arpa(reader: &mut dyn BufRead, phones: &PhoneSet, source: &Path) -> Result<Self> {
        check_inventory_size(phones)?;
        let mut parser = ArpaParser {
            phones,
            word_tokens: WordTokens::new(phones),
            source,
            line_number: 0,
            declared: Vec::new(),
            listed: Vec::new(),
            ngrams: Vec::new(),
            section: None,
        };
        // Line by line into one reused buffer: a gzipped LM is never inflated whole, and a "line"
        // without end (a binary file) stops at MAX_ARPA_LINE_BYTES instead of filling memory.
        let mut buffer = String::new();
        let mut ended = false;
        while parser.read_line(reader, &mut buffer)? {
            // A byte-order mark (an editor on Windows) before the first line.
            let line = buffer.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || ended {
                continue;
            }
            if line == "\\end\\" {
                ended = true;
                continue;
            }
            parser.line(line)?;
        }
        parser.finish(ended)
    }
}

/// The state of reading one ARPA file: where it is, what `\data\` declared and what was listed.
struct ArpaParser<'a> {
    phones: &'a PhoneSet,
    word_tokens: WordTokens,
    source: &'a Path,
    line_number: usize,
    /// N-gram counts `\data\` declares, by order − 1.
    declared: Vec<usize>,
    /// N-gram lines read, by order − 1.
    listed: Vec<usize>,
    ngrams: Vec<NgramMap<NgramEntry>>,
    /// None before `\data\`, Some(0) in it, Some(n) in the n-grams section.
    section: Option<usize>,
}

impl ArpaParser<'_> {
    fn error(&self, reason: String) -> Error {
        Error::Parse {
            path: self.source.to_path_buf(),
            line: Some(self.line_number),
            reason,
        }
    }

    /// Read the next line into `buffer`, at most [`MAX_ARPA_LINE_BYTES`]; false at the end.
    fn read_line(&mut self, reader: &mut dyn BufRead, buffer: &mut String) -> Result<bool> {
        buffer.clear();
        self.line_number += 1;
        let read =
            <&mut dyn BufRead as std::io::Read>::take(&mut *reader, MAX_ARPA_LINE_BYTES as u64 + 1)
                .read_line(buffer)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => {
                        self.error("not text (invalid UTF-8): not an ARPA file".to_string())
                    }
                    _ => Error::io(self.source, e),
                })?;
        if read > MAX_ARPA_LINE_BYTES {
            return Err(self.error(format!(
                "a line longer than {MAX_ARPA_LINE_BYTES} bytes: not an ARPA file"
            )));
        }
        Ok(read > 0)
    }

    /// One non-empty line before `\end\`.
    fn line(&mut self, line: &str) -> Result<()> {
        if line == "\\data\\" {
            self.section = Some(0);
            return Ok(());
        }
        if let Some(order) = line
            .strip_prefix('\\')
            .and_then(|rest| rest.strip_suffix("-grams:"))
        {
            let order: usize = order
                .parse()
                .map_err(|_| self.error(format!("bad section header '{line}'")))?;
            if order == 0 || order > self.declared.len() {
                return Err(
                    self.error(format!("section {order}-grams is not declared in \\data\\"))
                );
            }
            self.section = Some(order);
            return Ok(());
        }
        match self.section {
            None => Ok(()), // text before \data\ is allowed and ignored
            Some(0) => self.count_line(line),
            Some(n) => self.ngram_line(line, n),
        }
    }

    /// `ngram N=COUNT` in `\data\`.
    fn count_line(&mut self, line: &str) -> Result<()> {
        let count = line
            .strip_prefix("ngram ")
            .and_then(|rest| rest.split_once('='))
            .and_then(|(n, count)| {
                Some((n.trim().parse::<usize>().ok()?, count.trim().parse().ok()?))
            });
        let Some((n, count)) = count else {
            return Err(self.error(format!("expected 'ngram N=COUNT', found '{line}'")));
        };
        if n != self.declared.len() + 1 || n > MAX_LM_ORDER {
            return Err(self.error(format!(
                "ngram orders must run 1, 2, ... up to {MAX_LM_ORDER}; found {n}"
            )));
        }
        self.declared.push(count);
        self.listed.push(0);
        // The count is the file's claim: reserve for it only up to a bound, so a header declaring
        // 10^12 n-grams costs nothing until they are actually there.
        self.ngrams.push(NgramMap::with_capacity_and_hasher(
            count.min(MAX_RESERVED_NGRAMS),
            Default::default(),
        ));
        Ok(())
    }

    /// `log10-prob w1 ... wn [log10-backoff]` in the n-grams section.
    fn ngram_line(&mut self, line: &str, n: usize) -> Result<()> {
        let wrong_fields = || {
            self.error(format!(
                "expected a log10 probability, {n} words and an optional back-off"
            ))
        };
        let number = |text: &str| {
            text.parse::<f64>()
                .map_err(|_| self.error(format!("'{text}' is not a number")))
        };
        let mut fields = line.split_ascii_whitespace();
        let log_prob = number(fields.next().ok_or_else(wrong_fields)?)?;
        // log10 probabilities are ≤ 0 (SRILM writes -99 for "never"); a little rounding above 0 is
        // tolerated. NaN or inf would poison every beam score.
        if !log_prob.is_finite() || log_prob > MAX_LOG10_PROB {
            return Err(self.error(format!(
                "log10 probability {log_prob} is not a probability (it must be a finite number ≤ 0)"
            )));
        }
        let mut tokens = [NO_TOKEN; MAX_LM_ORDER];
        let mut unknown = false;
        for slot in &mut tokens[..n] {
            *slot =
                match fields.next().ok_or_else(wrong_fields)? {
                    "<s>" => SENTENCE_START,
                    "</s>" => SENTENCE_END,
                    "<unk>" | "<UNK>" => {
                        unknown = true;
                        NO_TOKEN
                    }
                    name => self.word_tokens.find(name, self.phones).ok_or_else(|| {
                        Error::UnknownPhone {
                            phone: name.to_string(),
                            path: self.source.to_path_buf(),
                            line: Some(self.line_number),
                        }
                    })?,
                };
        }
        let log_backoff = fields.next().map(number).transpose()?.unwrap_or(0.0);
        if !log_backoff.is_finite() {
            return Err(self.error(format!(
                "back-off weight {log_backoff} is not a finite number"
            )));
        }
        if fields.next().is_some() {
            return Err(wrong_fields());
        }
        self.listed[n - 1] += 1;
        if !unknown {
            self.ngrams[n - 1].insert(
                tokens,
                NgramEntry {
                    log_prob: from_log10(log_prob),
                    log_backoff: from_log10(log_backoff),
                },
            );
        }
        Ok(())
    }

    /// The LM, if the file was complete and listed what it declared.
    fn finish(self, ended: bool) -> Result<PhoneLm> {
        let whole_file = |reason: String| Error::Parse {
            path: self.source.to_path_buf(),
            line: None,
            reason,
        };
        if !ended || self.declared.is_empty() {
            return Err(whole_file(
                "not a complete ARPA file (no \\data\\ or \\end\\)".to_string(),
            ));
        }
        if let Some(n) = (0..self.declared.len()).find(|&n| self.declared[n] != self.listed[n]) {
            return Err(whole_file(format!(
                "\\data\\ declares {} {}-grams but the file lists {}",
                self.declared[n],
                n + 1,
                self.listed[n]
            )));
        }
        Ok(PhoneLm {
            order: self.declared.len(),
            storage: Storage::Maps(self.ngrams),
        })
    }
}

fn entry(log_prob: f64) -> NgramEntry {
    NgramEntry {
        log_prob,
        log_backoff: 0.0,
    }
}

/// A trie's n-grams as hash maps keyed by a phone set's ids: `tokens[id]` is the file's token of
/// phone `id`; the sentence markers are the same in both.
fn trie_to_maps_with(trie: &LmTrie, tokens: &[Token]) -> Vec<NgramMap<NgramEntry>> {
    let mut to_id: HashMap<Token, Token> = tokens
        .iter()
        .enumerate()
        .filter(|(_, &token)| token != NO_TOKEN)
        .map(|(id, &token)| (token, id as Token))
        .collect();
    to_id.insert(SENTENCE_START, SENTENCE_START);
    to_id.insert(SENTENCE_END, SENTENCE_END);
    trie.ngrams()
        .into_iter()
        .map(|level| {
            level
                .into_iter()
                .filter_map(|(file_tokens, entry)| {
                    let ids: Option<Vec<Token>> =
                        file_tokens.iter().map(|t| to_id.get(t).copied()).collect();
                    Some((key(&ids?), entry))
                })
                .collect()
        })
        .collect()
}

/// Phone names to tokens for reading ARPA files, where a million lines name several phones each: names
/// of up to 8 bytes are packed into a `u64` and binary-searched, which is several times faster than
/// [`PhoneSet::id`]'s string hash map. Other spellings (longer names, other letter case) fall back to
/// it.
struct WordTokens(Vec<(u64, Token)>);

impl WordTokens {
    fn new(phones: &PhoneSet) -> Self {
        let mut packed: Vec<(u64, Token)> = (1..phones.len())
            .filter_map(|id| {
                let phone = PhoneId(id as u16);
                Some((Self::pack(phones.name(phone))?, phone_token(phone)))
            })
            .collect();
        packed.sort_unstable();
        WordTokens(packed)
    }

    fn pack(word: &str) -> Option<u64> {
        let bytes = word.as_bytes();
        // Shifted in byte by byte: a memcpy into a buffer read back as a u64 stalled on store forwarding.
        (bytes.len() <= 8).then(|| {
            bytes
                .iter()
                .rev()
                .fold(0, |packed, &byte| packed << 8 | u64::from(byte))
        })
    }

    /// The token of a phone name (the blank is not a word), or None.
    fn find(&self, word: &str, phones: &PhoneSet) -> Option<Token> {
        if let Some(packed) = Self::pack(word) {
            if let Ok(index) = self.0.binary_search_by_key(&packed, |&(key, _)| key) {
                return Some(self.0[index].1);
            }
        }
        phones.id(word).filter(|id| *id != BLANK).map(phone_token)
    }
}

fn from_log10(value: f64) -> f64 {
    value * std::f64::consts::LN_10
}

fn to_log10(value: f64) -> f64 {
    value / std::f64::consts::LN_10
}

fn token_name(token: Token, phones: &PhoneSet) -> &str {
    match token {
        SENTENCE_START => "<s>",
        SENTENCE_END => "</s>",
        // Phone tokens were checked against the phone set when estimated or read.
        id => phones.name(PhoneId(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_without_a_unigram_are_listed() -> Result<()> {
        let phones = PhoneSet::timit39();
        let text = "\\data\\\nngram 1=4\n\n\\1-grams:\n-0.5\taa\n-0.5\tiy\n-0.3\t</s>\n-99\t<s>\n\n\\end\\\n";
        let lm = PhoneLm::from_arpa_bytes(text.as_bytes(), &phones, Path::new("two.arpa"))?;
        let unlisted = lm.unlisted_phones(&phones);
        let named = phones.format_sequence(&unlisted);
        assert!(!named.split(' ').any(|p| p == "aa" || p == "iy"), "{named}");
        let silence = usize::from(phones.silence().is_some());
        assert_eq!(unlisted.len(), phones.num_phones() - 2 - silence, "{named}");
        Ok(())
    }

    impl PhoneLm {
        fn maps(&self) -> &Vec<NgramMap<NgramEntry>> {
            match &self.storage {
                Storage::Maps(ngrams) => ngrams,
                Storage::Trie { .. } => panic!("a trie, not maps"),
            }
        }
    }

    /// Probabilities built from exact fractions, compared in f64.
    const PROB_TOLERANCE: f64 = 1e-12;
    /// ARPA stores 7 decimals of log10: relative error below 1e-6 after a round trip.
    const ARPA_ROUND_TRIP_TOLERANCE: f64 = 1e-6;

    fn two_phone_set() -> PhoneSet {
        PhoneSet::from_phones(["a".to_string(), "b".to_string()]).unwrap()
    }

    const A: PhoneId = PhoneId(1);
    const B: PhoneId = PhoneId(2);

    /// "a b" and "a": the hand computation in `witten_bell_bigram_by_hand`.
    fn corpus() -> Vec<Vec<PhoneId>> {
        vec![vec![A, B], vec![A]]
    }

    #[test]
    fn witten_bell_bigram_by_hand() -> Result<()> {
        let lm = PhoneLm::estimate(&corpus(), &two_phone_set(), 2)?;
        // Unigrams: counts a 2, b 1, </s> 2; N = 5 tokens, 3 distinct, vocabulary of 3:
        // P(w) = (c(w) + 3 · 1/3) / (5 + 3).
        // Bigrams after <s>: a twice (c = 2, u = 1): P(a|<s>) = (2 + 1 · 3/8) / 3 = 19/24, bow = 1/3.
        // After a: b once, </s> once (c = 2, u = 2): P(b|a) = (1 + 2 · 2/8) / 4 = 3/8,
        // P(</s>|a) = (1 + 2 · 3/8) / 4 = 7/16, bow = 1/2, so P(a|a) = 1/2 · 3/8 = 3/16.
        let start = lm.start();
        let expected_after_start = [(A, 19.0 / 24.0), (B, 1.0 / 3.0 * 2.0 / 8.0)];
        for (phone, prob) in expected_after_start {
            assert!((lm.score(&start, phone).0.exp() - prob).abs() < PROB_TOLERANCE);
        }
        assert!((lm.score_end(&start).exp() - 1.0 / 8.0).abs() < PROB_TOLERANCE);
        let (_, after_a) = lm.score(&start, A);
        assert!((lm.score(&after_a, B).0.exp() - 3.0 / 8.0).abs() < PROB_TOLERANCE);
        assert!((lm.score(&after_a, A).0.exp() - 3.0 / 16.0).abs() < PROB_TOLERANCE);
        assert!((lm.score_end(&after_a).exp() - 7.0 / 16.0).abs() < PROB_TOLERANCE);
        let whole =
            (19.0_f64 / 24.0 * 3.0 / 8.0 * lm.score_end(&lm.score(&after_a, B).1).exp()).ln();
        assert!((lm.sentence_log_prob(&[A, B]) - whole).abs() < PROB_TOLERANCE);
        Ok(())
    }

    fn assert_normalised(lm: &PhoneLm, state: &LmState, num_phones: u16) {
        let total: f64 = (1..=num_phones)
            .map(|id| lm.score(state, PhoneId(id)).0.exp())
            .sum::<f64>()
            + lm.score_end(state).exp();
        assert!((total - 1.0).abs() < 1e-9, "sums to {total}");
    }

    #[test]
    fn every_history_is_a_distribution() -> Result<()> {
        let phones = PhoneSet::timit39();
        let mut sequences = Vec::new();
        // A deterministic pseudo-corpus over a few phones, with unseen phones left for smoothing.
        for i in 0..40_u16 {
            sequences.push(
                (0..(i % 7 + 1))
                    .map(|j| PhoneId(1 + (i * 3 + j * 5) % 11))
                    .collect(),
            );
        }
        for order in 1..=3 {
            let lm = PhoneLm::estimate(&sequences, &phones, order)?;
            let mut state = lm.start();
            assert_normalised(&lm, &state, 39);
            for phone in [1, 4, 4, 9, 30] {
                state = lm.score(&state, PhoneId(phone)).1;
                assert_normalised(&lm, &state, 39);
            }
            // The training data is more likely than a sequence of phones never seen.
            assert!(lm.perplexity(&sequences) < lm.perplexity(&[vec![PhoneId(30), PhoneId(31)]]));
        }
        Ok(())
    }

    #[test]
    fn pruned_models_are_distributions_with_fewer_ngrams() -> Result<()> {
        let phones = PhoneSet::timit39();
        // Repeated patterns (kept by the cut-off) mixed with one-off ones (pruned).
        let sequences: Vec<Vec<PhoneId>> = (0..200_u16)
            .map(|i| {
                (0..(i % 9 + 2))
                    .map(|j| PhoneId(1 + (i % 13 * 7 + j * (1 + i % 3)) % 17))
                    .collect()
            })
            .collect();
        let full = PhoneLm::estimate(&sequences, &phones, 5)?;
        assert_eq!(full, PhoneLm::estimate_pruned(&sequences, &phones, 5, 1)?);
        let pruned = PhoneLm::estimate_pruned(&sequences, &phones, 5, 3)?;
        // Unigrams and bigrams are never pruned (bigram back-offs change: trigrams are pruned).
        assert!(pruned.maps()[0] == full.maps()[0], "unigrams changed");
        assert_eq!(pruned.maps()[1].len(), full.maps()[1].len());
        assert!(pruned.maps()[1]
            .iter()
            .all(|(ngram, entry)| full.maps()[1][ngram].log_prob == entry.log_prob));
        assert!((2..5).all(|n| pruned.maps()[n].len() <= full.maps()[n].len()));
        assert!(pruned.maps()[4].len() < full.maps()[4].len());
        // Every state along the training sentences (and beyond them) is a distribution.
        for sentence in sequences.iter().step_by(7) {
            let mut state = pruned.start();
            assert_normalised(&pruned, &state, 39);
            for &phone in sentence.iter().chain(&[PhoneId(30)]) {
                state = pruned.score(&state, phone).1;
                assert_normalised(&pruned, &state, 39);
            }
        }
        // A kept n-gram keeps its probability.
        let (&kept, entry) = pruned.maps()[4]
            .iter()
            .next()
            .expect("some 5-gram survives");
        assert_eq!(full.maps()[4][&kept].log_prob, entry.log_prob);
        Ok(())
    }

    #[test]
    fn arpa_round_trip() -> Result<()> {
        let phones = two_phone_set();
        let lm = PhoneLm::estimate(&corpus(), &phones, 3)?;
        let mut text = Vec::new();
        lm.write_arpa(&phones, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("\\data\\\nngram 1=4\n"), "{text}");
        assert!(text.contains("-99.0000000\t<s>\t"), "{text}");
        let back = PhoneLm::read_arpa(&mut text.as_bytes(), &phones, Path::new("lm.arpa"))?;
        assert_eq!(back.order(), 3);
        for sentence in [vec![], vec![A], vec![A, B, A, A], vec![B, B]] {
            let (want, got) = (
                lm.sentence_log_prob(&sentence),
                back.sentence_log_prob(&sentence),
            );
            assert!((want - got).abs() < ARPA_ROUND_TRIP_TOLERANCE * want.abs().max(1.0));
        }

        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("phones.arpa");
        lm.save(&path, &phones)?;
        let plain = PhoneLm::load(&path, &phones)?;
        assert_eq!(plain.order(), 3);

        // `.gz` writes gzip; loading recognises it by content, from a file or from memory.
        let gz_path = dir.path().join("phones.arpa.gz");
        lm.save(&gz_path, &phones)?;
        let gz_bytes = std::fs::read(&gz_path).map_err(|e| Error::io(&gz_path, e))?;
        assert_eq!(gz_bytes[..2], [0x1f, 0x8b], "not gzip");
        assert_eq!(PhoneLm::load(&gz_path, &phones)?, plain);
        let renamed = dir.path().join("gzip-without-suffix.arpa");
        std::fs::write(&renamed, &gz_bytes).map_err(|e| Error::io(&renamed, e))?;
        assert_eq!(PhoneLm::load(&renamed, &phones)?, plain);
        assert_eq!(
            PhoneLm::from_arpa_bytes(&gz_bytes, &phones, Path::new("mem"))?,
            plain
        );
        assert_eq!(
            PhoneLm::from_arpa_bytes(text.as_bytes(), &phones, Path::new("mem"))?,
            plain
        );
        // A byte-order mark before `\data\` (an editor on Windows) changes nothing.
        let with_bom = format!("\u{feff}{text}");
        assert_eq!(
            PhoneLm::from_arpa_bytes(with_bom.as_bytes(), &phones, Path::new("bom"))?,
            plain
        );
        // A damaged gzip stream is an error, not a silently shorter model.
        let cut = &gz_bytes[..gz_bytes.len() / 2];
        assert!(PhoneLm::from_arpa_bytes(cut, &phones, Path::new("cut.gz")).is_err());
        Ok(())
    }

    #[test]
    fn pruned_estimation_is_deterministic() -> Result<()> {
        // Back-off renormalisation sums many probabilities per history; summed in hash order (which
        // differs between maps) the last digits of the ARPA file changed from run to run.
        let phones = PhoneSet::timit39();
        // Pseudo-random sentences (a linear congruential generator) with a skewed phone distribution:
        // many histories with many followers, many n-grams seen once or twice.
        let mut state = 12345_u64;
        let mut next_phone = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (state >> 33) % 1000;
            PhoneId((1 + (r * r / 1000 * 37 / 1000)) as u16)
        };
        let sequences: Vec<Vec<PhoneId>> = (0..2000_usize)
            .map(|i| (0..(i % 23 + 3)).map(|_| next_phone()).collect())
            .collect();
        // Compared exactly (f64 equality), not through ARPA's 7 decimals.
        let first = PhoneLm::estimate_pruned(&sequences, &phones, 5, 2)?;
        for _ in 0..3 {
            assert!(first == PhoneLm::estimate_pruned(&sequences, &phones, 5, 2)?);
        }
        Ok(())
    }

    #[test]
    fn bad_arpa_names_file_line_and_phone() {
        let phones = two_phone_set();
        let text = "\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\ta\n-0.3\tzz\n\\end\\\n";
        let err = PhoneLm::read_arpa(&mut text.as_bytes(), &phones, Path::new("x.arpa"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.arpa:6") && err.contains("'zz'"), "{err}");
        let truncated = "\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\ta\n";
        assert!(PhoneLm::read_arpa(&mut truncated.as_bytes(), &phones, Path::new("x")).is_err());
    }

    #[test]
    fn bad_estimation_inputs_are_errors() {
        let phones = two_phone_set();
        assert!(PhoneLm::estimate(&corpus(), &phones, 0).is_err());
        assert!(PhoneLm::estimate(&corpus(), &phones, MAX_LM_ORDER + 1).is_err());
        assert!(PhoneLm::estimate(&[vec![PhoneId(3)]], &phones, 2).is_err());
        assert!(PhoneLm::estimate(&[vec![BLANK]], &phones, 2).is_err());
        // Phone ids must stay below the sentence markers' token values.
        let largest = PhoneSet::from_phones((1..MAX_LM_PHONES).map(|i| format!("p{i}"))).unwrap();
        assert!(PhoneLm::estimate(&corpus(), &largest, 2).is_ok());
        let too_many = PhoneSet::from_phones((0..MAX_LM_PHONES).map(|i| format!("p{i}"))).unwrap();
        let err = PhoneLm::estimate(&corpus(), &too_many, 2).unwrap_err();
        assert!(
            err.to_string().contains("more than a phone LM can hold"),
            "{err}"
        );
        let text = "\\data\\\nngram 1=1\n\n\\1-grams:\n-0.3\tp1\n\\end\\\n";
        assert!(PhoneLm::read_arpa(&mut text.as_bytes(), &largest, Path::new("x")).is_ok());
        assert!(PhoneLm::read_arpa(&mut text.as_bytes(), &too_many, Path::new("x")).is_err());
    }

    #[test]
    fn empty_corpus_is_uniform() -> Result<()> {
        let lm = PhoneLm::estimate(&[], &two_phone_set(), 2)?;
        let third = (1.0_f64 / 3.0).ln();
        assert!((lm.score(&lm.start(), A).0 - third).abs() < PROB_TOLERANCE);
        assert!((lm.score_end(&lm.start()) - third).abs() < PROB_TOLERANCE);
        Ok(())
    }

    /// Every score a decoder can ask for, up to `depth` phones of history: exact equality.
    fn assert_same_scores(a: &PhoneLm, b: &PhoneLm, phones: &[PhoneId], depth: usize) {
        let mut states = vec![(a.start(), b.start())];
        for _ in 0..depth {
            let mut next = Vec::new();
            for (state_a, state_b) in &states {
                assert_eq!(a.score_end(state_a), b.score_end(state_b));
                for &phone in phones {
                    let (score_a, after_a) = a.score(state_a, phone);
                    let (score_b, after_b) = b.score(state_b, phone);
                    assert_eq!(score_a, score_b, "{phone:?} after {state_a:?}");
                    next.push((after_a, after_b));
                }
            }
            states = next;
        }
    }

    /// A pruned trigram over three phones: pseudo-random sentences with a skew.
    fn three_phone_lm() -> Result<(PhoneSet, PhoneLm)> {
        let phones = PhoneSet::from_phones(["a", "b", "c"].map(String::from)).unwrap();
        let mut state = 7u64;
        let sentences: Vec<Vec<PhoneId>> = (0..300)
            .map(|_| {
                (0..6)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                        PhoneId(1 + ((state >> 40) % 7).min(2) as u16)
                    })
                    .collect()
            })
            .collect();
        let lm = PhoneLm::estimate_pruned(&sentences, &phones, 4, 3)?;
        Ok((phones, lm))
    }

    #[test]
    fn binary_format_scores_exactly_as_arpa_and_converts_back_unchanged() -> Result<()> {
        let (phones, lm) = three_phone_lm()?;
        let bytes = lm.binary_bytes(&phones);
        let binary = PhoneLm::from_bytes(&bytes, &phones, Path::new("lm.bin"))?;
        assert!(matches!(binary.storage, Storage::Trie { .. }));
        assert_eq!(binary.order(), 4);
        let ids: Vec<PhoneId> = (1..4).map(PhoneId).collect();
        assert_same_scores(&lm, &binary, &ids, 4);
        // ARPA text from either is the same, and so is the binary written from the binary.
        let (mut from_maps, mut from_trie) = (Vec::new(), Vec::new());
        lm.write_arpa(&phones, &mut from_maps).unwrap();
        binary.write_arpa(&phones, &mut from_trie).unwrap();
        assert_eq!(from_maps, from_trie);
        assert_eq!(binary.binary_bytes(&phones), bytes);
        // Saved by extension, loaded by content.
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("phones.bin");
        lm.save(&path, &phones)?;
        assert_eq!(PhoneLm::load(&path, &phones)?, binary);
        Ok(())
    }

    #[test]
    fn binary_lm_serves_a_model_whose_phone_ids_differ() -> Result<()> {
        let (phones, lm) = three_phone_lm()?;
        // Both from the same ARPA text (7 decimals), the binary through the LM's own phone ids.
        let mut arpa = Vec::new();
        lm.write_arpa(&phones, &mut arpa).unwrap();
        let bytes = PhoneLm::read_arpa(&mut arpa.as_slice(), &phones, Path::new("x"))?
            .binary_bytes(&phones);
        // The same names in another order, plus a phone the LM never saw.
        let other = PhoneSet::from_phones(["d", "c", "a", "b"].map(String::from)).unwrap();
        let from_arpa = PhoneLm::read_arpa(&mut arpa.as_slice(), &other, Path::new("x"))?;
        let from_binary = PhoneLm::from_bytes(&bytes, &other, Path::new("x.bin"))?;
        let ids: Vec<PhoneId> = (1..5).map(PhoneId).collect();
        assert_same_scores(&from_arpa, &from_binary, &ids, 4);
        // A model lacking one of the LM's phones cannot use it, as with ARPA.
        let fewer = PhoneSet::from_phones(["a", "b"].map(String::from)).unwrap();
        let err = PhoneLm::from_bytes(&bytes, &fewer, Path::new("x.bin")).unwrap_err();
        assert!(err.to_string().contains('c'), "{err}");
        Ok(())
    }

    #[test]
    fn ngrams_listed_without_their_prefix_score_the_same_from_binary() -> Result<()> {
        // `a b c` is listed without `a b` (ARPA allows it; pruned models do it); the binary adds a
        // placeholder for `a b` that must behave as "not stored".
        let phones = PhoneSet::from_phones(["a", "b", "c"].map(String::from)).unwrap();
        let text = "\\data\\\nngram 1=5\nngram 2=2\nngram 3=1\n\n\\1-grams:\n\
                    -99\t<s>\t-0.2\n-0.5\ta\t-0.1\n-0.6\tb\t-0.15\n-0.7\tc\t-0.3\n-0.4\t</s>\n\n\
                    \\2-grams:\n-0.2\t<s> a\t-0.05\n-0.3\tb c\t-0.07\n\n\
                    \\3-grams:\n-0.1\ta b c\n\n\\end\\\n";
        let arpa = PhoneLm::read_arpa(&mut text.as_bytes(), &phones, Path::new("x.arpa"))?;
        let binary = PhoneLm::from_bytes(&arpa.binary_bytes(&phones), &phones, Path::new("x"))?;
        let ids: Vec<PhoneId> = (1..4).map(PhoneId).collect();
        assert_same_scores(&arpa, &binary, &ids, 3);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        arpa.write_arpa(&phones, &mut a).unwrap();
        binary.write_arpa(&phones, &mut b).unwrap();
        assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        Ok(())
    }

    #[test]
    fn damaged_binary_lms_are_errors_naming_the_file() -> Result<()> {
        let (phones, lm) = three_phone_lm()?;
        let bytes = lm.binary_bytes(&phones);
        let load = |bytes: &[u8]| PhoneLm::from_bytes(bytes, &phones, Path::new("x.bin"));
        for cut in [9, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = load(&bytes[..cut]).unwrap_err().to_string();
            assert!(
                err.contains("x.bin") && err.contains("binary phone LM"),
                "{err}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(load(&longer).is_err());
        let mut version = bytes.clone();
        version[7] = 9;
        assert!(load(&version)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
        // Swap the first two unigram tokens: level 1 is then unsorted.
        // Header without names: magic, order, encoding, name count, counts.
        let level1 = bytes.len() - {
            let full = lm_trie::write(&lm.sorted_ngrams(), &[]);
            full.len() - 8 - 4 - 4 - 4 - 8 * lm.order()
        };
        let narrow_tokens = bytes[12] & 1 == 1;
        let mut unsorted = bytes.clone();
        if narrow_tokens {
            unsorted.swap(level1, level1 + 1);
        } else {
            unsorted.swap(level1, level1 + 2);
            unsorted.swap(level1 + 1, level1 + 3);
        }
        assert!(load(&unsorted).unwrap_err().to_string().contains("sorted"));
        Ok(())
    }
}
