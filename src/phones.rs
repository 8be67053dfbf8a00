//! Phone inventories and foldings.
//!
//! The default inventory is the 39-phone TIMIT folding of Lee & Hon (1989) plus the CTC blank at index 0.
//! Phones print as lowercase ARPAbet. Custom inventories load from a plain-text file, one phone per line,
//! so a model can be trained on any phone set.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Index of a phone in a [`PhoneSet`]; 0 is the CTC blank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PhoneId(pub u16);

impl PhoneId {
    /// The id as an index into a posterior row.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The CTC blank, always at index 0.
pub const BLANK: PhoneId = PhoneId(0);

/// The name the blank carries in tables and model files.
pub const BLANK_NAME: &str = "<blk>";

/// The silence phone of the default inventory.
pub const SILENCE: &str = "sil";

/// The 39 phones of the TIMIT folding (Lee & Hon 1989), in the order of the default model's outputs.
pub const TIMIT39: [&str; 39] = [
    "iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "oy", "ow", "uh", "uw", "er", "b", "d",
    "g", "p", "t", "k", "dx", "jh", "ch", "s", "sh", "z", "f", "th", "v", "dh", "m", "n", "ng",
    "l", "r", "w", "y", "hh", "sil",
];

/// TIMIT's 61 phones folded to the 39 (phones not listed map to themselves; `q` is deleted).
const TIMIT61_FOLDING: [(&str, &str); 22] = [
    ("ao", "aa"),
    ("ax", "ah"),
    ("ax-h", "ah"),
    ("axr", "er"),
    ("hv", "hh"),
    ("ix", "ih"),
    ("el", "l"),
    ("em", "m"),
    ("en", "n"),
    ("nx", "n"),
    ("eng", "ng"),
    ("zh", "sh"),
    ("ux", "uw"),
    ("pcl", "sil"),
    ("tcl", "sil"),
    ("kcl", "sil"),
    ("bcl", "sil"),
    ("dcl", "sil"),
    ("gcl", "sil"),
    ("h#", "sil"),
    ("pau", "sil"),
    ("epi", "sil"),
];

/// Whether a token of another recogniser's phone output marks noise or a filler rather than a
/// phone: Kaldi's `SPN`/`NSN` and `<unk>`-style symbols, bracketed noise tags (`[noise]`,
/// `[laughter]`), pocketsphinx's fillers (`+NSN+`, `+BREATH+`) and sentence marks (`<s>`).
/// `<sil>` is silence, not a filler.
pub fn is_filler_token(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    let stem = strip_word_position(&lower);
    matches!(stem, "spn" | "nsn" | "lau" | "gbg")
        || (lower.len() > 2
            && ((lower.starts_with('<') && lower.ends_with('>') && lower != "<sil>")
                || (lower.starts_with('[') && lower.ends_with(']'))
                || (lower.starts_with('+') && lower.ends_with('+'))))
}

/// A Kaldi position-dependent phone's base phone: `AH1_I` → `AH1` (word-begin, -internal, -end
/// and singleton suffixes `_B`, `_I`, `_E`, `_S`); other names unchanged.
pub fn strip_word_position(phone: &str) -> &str {
    ["_B", "_I", "_E", "_S", "_b", "_i", "_e", "_s"]
        .iter()
        .find_map(|suffix| phone.strip_suffix(suffix))
        .filter(|stem| !stem.is_empty())
        .unwrap_or(phone)
}

/// Fold one TIMIT-61 phone (any case) to the 39-phone set. `None` means the phone is deleted (`q`).
/// Phones outside TIMIT's 61 are returned lowercased and unchanged; the caller checks them against
/// an inventory.
pub fn fold_timit61(phone: &str) -> Option<String> {
    let lower = phone.to_ascii_lowercase();
    if lower == "q" {
        return None;
    }
    for (from, to) in TIMIT61_FOLDING {
        if lower == from {
            return Some(to.to_string());
        }
    }
    Some(lower)
}

/// Fold one CMUdict phone (any case, stress digit optional) to the 39-phone set:
/// stress digits stripped, AO → aa, ZH → sh; everything else is identical.
pub fn fold_cmudict(phone: &str) -> String {
    let stripped: String = phone
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect::<String>()
        .to_ascii_lowercase();
    match stripped.as_str() {
        "ao" => "aa".to_string(),
        "zh" => "sh".to_string(),
        _ => stripped,
    }
}

/// ARPAbet (the 39-phone TIMIT folding, plus `ao` and `zh` that it folds away) to IPA, the one table
/// every `--alphabet ipa` output goes through. Vowels are General American broad transcription:
/// `ah` is written ʌ although the folding also puts the unstressed schwa (ə) there, and `er` is ɝ
/// for both stressed and unstressed r-coloured vowels.
pub const ARPABET_TO_IPA: [(&str, &str); 41] = [
    ("aa", "ɑ"),
    ("ae", "æ"),
    ("ah", "ʌ"),
    ("ao", "ɔ"),
    ("aw", "aʊ"),
    ("ay", "aɪ"),
    ("b", "b"),
    ("ch", "tʃ"),
    ("d", "d"),
    ("dh", "ð"),
    ("dx", "ɾ"),
    ("eh", "ɛ"),
    ("er", "ɝ"),
    ("ey", "eɪ"),
    ("f", "f"),
    ("g", "ɡ"),
    ("hh", "h"),
    ("ih", "ɪ"),
    ("iy", "i"),
    ("jh", "dʒ"),
    ("k", "k"),
    ("l", "l"),
    ("m", "m"),
    ("n", "n"),
    ("ng", "ŋ"),
    ("ow", "oʊ"),
    ("oy", "ɔɪ"),
    ("p", "p"),
    ("r", "ɹ"),
    ("s", "s"),
    ("sh", "ʃ"),
    ("t", "t"),
    ("th", "θ"),
    ("uh", "ʊ"),
    ("uw", "u"),
    ("v", "v"),
    ("w", "w"),
    ("y", "j"),
    ("z", "z"),
    ("zh", "ʒ"),
    ("sil", "sil"),
];

/// The IPA of an ARPAbet phone name (any case), if [`ARPABET_TO_IPA`] has it.
pub fn arpabet_to_ipa(phone: &str) -> Option<&'static str> {
    let lower = phone.to_ascii_lowercase();
    ARPABET_TO_IPA
        .iter()
        .find(|(arpabet, _)| *arpabet == lower)
        .map(|(_, ipa)| *ipa)
}

/// IPA symbols that are not in [`ARPABET_TO_IPA`] but name one of its phones in a broad
/// transcription of English (what other recognisers, Allosaurus among them, write).
const IPA_EQUIVALENTS: [(&str, &str); 20] = [
    ("ə", "ah"),
    ("ɐ", "ah"),
    ("ɚ", "er"),
    ("ɜ", "er"),
    ("ɻ", "r"),
    ("ɫ", "l"),
    ("a", "aa"),
    ("ɒ", "aa"),
    ("e", "ey"),
    ("ei", "ey"),
    ("o", "ow"),
    ("ou", "ow"),
    ("ai", "ay"),
    ("au", "aw"),
    ("oi", "oy"),
    ("ɨ", "ih"),
    ("ʉ", "uw"),
    ("ɦ", "hh"),
    ("ʒ", "zh"),
    ("ʍ", "w"),
];

/// The ARPAbet of an IPA symbol (length marks, aspiration and other diacritics, stress marks and
/// tie bars ignored: `tʰ` → `t`, `iː` → `iy`, `t͡ʃ` → `ch`): `Some(Some(phone))`, `Some(None)` for
/// the glottal stop (no phone, as TIMIT's `q`), `None` for a symbol that is not one of English's
/// phones in IPA.
pub fn ipa_to_arpabet(symbol: &str) -> Option<Option<&'static str>> {
    let base: String = symbol
        .chars()
        .filter(|&c| {
            !matches!(
                c,
                '\u{0300}'..='\u{036F}' | 'ː' | 'ˑ' | 'ʰ' | 'ʷ' | 'ʲ' | 'ˠ' | 'ˤ' | 'ˈ' | 'ˌ' | '˞'
            )
        })
        .collect();
    if base == "ʔ" {
        return Some(None);
    }
    let ours = ARPABET_TO_IPA
        .iter()
        .find(|(arpabet, ipa)| *ipa == base && *arpabet != SILENCE)
        .map(|(arpabet, _)| *arpabet);
    let theirs = || {
        IPA_EQUIVALENTS
            .iter()
            .find(|(ipa, _)| *ipa == base)
            .map(|(_, arpabet)| *arpabet)
    };
    ours.or_else(theirs).map(Some)
}

/// Which symbols outputs name phones with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Alphabet {
    /// The model's own names (ARPAbet, lowercase, for the built-in model).
    #[default]
    Arpabet,
    /// IPA through [`ARPABET_TO_IPA`].
    Ipa,
}

impl crate::choice::Choice for Alphabet {
    const CHOICES: &'static [crate::choice::Named<Self>] = &[
        crate::choice::Named {
            value: Alphabet::Arpabet,
            name: "arpabet",
            help: "The model's phone names (lowercase ARPAbet for the built-in model)",
        },
        crate::choice::Named {
            value: Alphabet::Ipa,
            name: "ipa",
            help: "IPA (General American broad transcription; `ah` is ʌ, also for schwa)",
        },
    ];
}

/// An ordered phone inventory with the CTC blank at index 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct PhoneSet {
    /// Names by id; `names[0]` is [`BLANK_NAME`].
    names: Vec<String>,
    #[serde(skip)]
    ids: HashMap<String, PhoneId>,
}

impl PhoneSet {
    /// The default inventory: blank + the 39 TIMIT-folded phones.
    pub fn timit39() -> Self {
        Self::from_phones(TIMIT39.iter().map(|s| s.to_string()))
            .expect("the built-in inventory is valid")
    }

    /// Build an inventory from phone names (without the blank, which is added at index 0).
    /// Names are lowercased; duplicates, empty names and names with whitespace are refused.
    pub fn from_phones(phones: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut names = vec![BLANK_NAME.to_string()];
        for phone in phones {
            names.push(phone);
        }
        Self::try_from(names).map_err(|reason| Error::InvalidOptions {
            what: "phone set",
            reason,
        })
    }

    /// Load a custom inventory from a text file: one phone per line; blank lines and `#` comments ignored.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::data::read_text(path)?;
        let mut names = vec![BLANK_NAME.to_string()];
        let mut seen = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let parse_error = |reason: String| Error::Parse {
                path: path.to_path_buf(),
                line: Some(index + 1),
                reason,
            };
            if line.split_whitespace().count() != 1 {
                return Err(parse_error(format!(
                    "expected one phone per line, found '{line}'"
                )));
            }
            let name = line.to_ascii_lowercase();
            if name == BLANK_NAME {
                return Err(parse_error(format!(
                    "'{BLANK_NAME}' is reserved for the CTC blank, which is added automatically"
                )));
            }
            if let Some(first) = seen.insert(name.clone(), index + 1) {
                return Err(parse_error(format!(
                    "phone '{name}' is listed twice (first on line {first})"
                )));
            }
            names.push(name);
        }
        if names.len() < 2 {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: None,
                reason: "the phone list is empty".to_string(),
            });
        }
        Self::try_from(names).map_err(|reason| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            reason,
        })
    }

    /// Number of outputs, the blank included.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Never true: the blank is always present.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of real phones (the blank excluded).
    pub fn num_phones(&self) -> usize {
        self.names.len() - 1
    }

    /// The id of a phone name (case-insensitive), if it is in the inventory.
    pub fn id(&self, name: &str) -> Option<PhoneId> {
        self.ids
            .get(name)
            .or_else(|| self.ids.get(&name.to_ascii_lowercase()))
            .copied()
    }

    /// The name of an id; ids outside the inventory print as `?`.
    pub fn name(&self, id: PhoneId) -> &str {
        self.names
            .get(id.index())
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// All names by id, the blank first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The id of the silence phone, if the inventory has one.
    pub fn silence(&self) -> Option<PhoneId> {
        self.id(SILENCE)
    }

    /// Parse space-separated phone names into ids. An unknown phone is an error naming the phone, the file
    /// and the line the text came from.
    ///
    /// With the default 39-phone inventory, labels in the other common spellings are folded to it as
    /// the lexicon path folds them: CMUdict's stress digits and `ao`/`zh` (`EH1` → `eh`, `AO` → `aa`),
    /// then TIMIT's 61/48 symbols (`ix` → `ih`, `axr` → `er`, `pau` → `sil`; `q` is dropped), then
    /// IPA ([`ipa_to_arpabet`]: `ð ə k w ɪ k` → `dh ah k w ih k`; `ʔ` is dropped); Kaldi's
    /// word-position suffixes are stripped (`AH1_I` → `ah`) and noise and filler tokens dropped
    /// ([`is_filler_token`]: `SPN`, `<unk>`, `[noise]`, `+NSN+`). A custom inventory takes its own
    /// names only.
    pub fn parse_sequence(&self, text: &str, path: &Path, line: usize) -> Result<Vec<PhoneId>> {
        let fold = self.is_timit39();
        let mut ids = Vec::new();
        for phone in text.split_whitespace() {
            let exact = self.id(phone).filter(|id| *id != BLANK);
            let folded = || -> Option<Option<PhoneId>> {
                // Other recognisers' output: noise and filler tokens are no phone; Kaldi's
                // word-position suffixes (`AH1_I`) go.
                if self.id(phone) == Some(BLANK) {
                    return None; // the blank (`<blk>`) is never a label
                }
                if is_filler_token(phone) {
                    return Some(None);
                }
                let phone = if phone.eq_ignore_ascii_case("<sil>") {
                    SILENCE // pocketsphinx's silence
                } else {
                    strip_word_position(phone)
                };
                if let Some(id) = self.id(phone).filter(|id| *id != BLANK) {
                    return Some(Some(id));
                }
                let cmudict = fold_cmudict(phone);
                if let Some(id) = self.id(&cmudict) {
                    return Some(Some(id));
                }
                match fold_timit61(&cmudict) {
                    None => return Some(None), // TIMIT's glottal stop: no phone
                    Some(timit) => {
                        if let Some(id) = self.id(&timit) {
                            return Some(Some(id));
                        }
                    }
                }
                // IPA (`--alphabet ipa` output, other recognisers'), folded the same way.
                match ipa_to_arpabet(phone)? {
                    None => Some(None),
                    Some(arpabet) => self.id(&fold_timit61(&fold_cmudict(arpabet))?).map(Some),
                }
            };
            match (exact, fold) {
                (Some(id), _) => ids.push(id),
                (None, true) => match folded().filter(|f| *f != Some(BLANK)) {
                    Some(Some(id)) => ids.push(id),
                    Some(None) => {}
                    None => return Err(self.unknown(phone, path, line)),
                },
                (None, false) => return Err(self.unknown(phone, path, line)),
            }
        }
        Ok(ids)
    }

    /// Whether this is the default inventory, [`TIMIT39`] after the blank.
    pub(crate) fn is_timit39(&self) -> bool {
        self.names.len() == TIMIT39.len() + 1
            && self.names[1..].iter().zip(TIMIT39).all(|(a, b)| a == b)
    }

    fn unknown(&self, phone: &str, path: &Path, line: usize) -> Error {
        Error::UnknownPhone {
            phone: phone.to_string(),
            path: path.to_path_buf(),
            line: Some(line),
        }
    }

    /// The same inventory named in `alphabet`: for IPA, every phone [`ARPABET_TO_IPA`] knows is
    /// renamed; the names it does not know (a custom inventory) are kept and returned, so the caller
    /// can say so.
    pub fn in_alphabet(&self, alphabet: Alphabet) -> (PhoneSet, Vec<String>) {
        match alphabet {
            Alphabet::Arpabet => (self.clone(), Vec::new()),
            Alphabet::Ipa => {
                let mut unknown = Vec::new();
                let names: Vec<String> = self.names[1..]
                    .iter()
                    .map(|name| match arpabet_to_ipa(name) {
                        Some(ipa) => ipa.to_string(),
                        None => {
                            unknown.push(name.clone());
                            name.clone()
                        }
                    })
                    .collect();
                // Two phones may not end up with one name (a custom inventory with both `ao` and
                // `ɔ`): then the model's names stay.
                match PhoneSet::from_phones(names) {
                    Ok(renamed) => (renamed, unknown),
                    Err(_) => (self.clone(), self.names[1..].to_vec()),
                }
            }
        }
    }

    /// Space-separated names of a sequence of ids.
    pub fn format_sequence(&self, ids: &[PhoneId]) -> String {
        ids.iter()
            .map(|id| self.name(*id))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Default for PhoneSet {
    fn default() -> Self {
        Self::timit39()
    }
}

impl TryFrom<Vec<String>> for PhoneSet {
    type Error = String;

    /// From names by id, the blank first (the form stored in model files).
    fn try_from(names: Vec<String>) -> std::result::Result<Self, String> {
        if names.first().map(String::as_str) != Some(BLANK_NAME) {
            return Err(format!("the first entry must be the blank '{BLANK_NAME}'"));
        }
        if names.len() < 2 {
            return Err("the inventory holds no phones".to_string());
        }
        if names.len() > u16::MAX as usize {
            return Err(format!("too many phones ({})", names.len()));
        }
        let mut ids = HashMap::new();
        let mut lowered = Vec::with_capacity(names.len());
        for (index, name) in names.into_iter().enumerate() {
            let name = if index == 0 {
                name
            } else {
                name.to_ascii_lowercase()
            };
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(format!("invalid phone name '{name}'"));
            }
            if ids.insert(name.clone(), PhoneId(index as u16)).is_some() {
                return Err(format!("phone '{name}' is listed twice"));
            }
            lowered.push(name);
        }
        Ok(PhoneSet {
            names: lowered,
            ids,
        })
    }
}

impl From<PhoneSet> for Vec<String> {
    fn from(set: PhoneSet) -> Self {
        set.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_inventory_has_blank_first_and_39_phones() {
        let set = PhoneSet::timit39();
        assert_eq!(set.len(), 40);
        assert_eq!(set.name(BLANK), BLANK_NAME);
        assert_eq!(set.id("iy"), Some(PhoneId(1)));
        assert_eq!(set.id("SIL"), Some(PhoneId(39)));
        assert_eq!(set.silence(), Some(PhoneId(39)));
    }

    #[test]
    fn ipa_names_every_default_phone_once() {
        let set = PhoneSet::timit39();
        let (ipa, unknown) = set.in_alphabet(Alphabet::Ipa);
        assert!(unknown.is_empty());
        assert_eq!(ipa.len(), set.len());
        // Renaming keeps ids: the same id names the same phone in both alphabets.
        for (arpabet, expected) in [
            ("sh", "ʃ"),
            ("th", "θ"),
            ("er", "ɝ"),
            ("y", "j"),
            ("ay", "aɪ"),
        ] {
            let id = set.id(arpabet).unwrap();
            assert_eq!(ipa.name(id), expected);
        }
        assert_eq!(arpabet_to_ipa("ZH"), Some("ʒ"));
        // Every IPA symbol in the table is distinct (no two ARPAbet phones merge).
        let mut symbols: Vec<_> = ARPABET_TO_IPA.iter().map(|(_, i)| *i).collect();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), ARPABET_TO_IPA.len());
        // A custom inventory keeps the names IPA has no entry for, and says which.
        let custom = PhoneSet::from_phones(["aa".to_string(), "click".to_string()]).unwrap();
        let (renamed, unknown) = custom.in_alphabet(Alphabet::Ipa);
        assert_eq!(renamed.names()[1..], ["ɑ".to_string(), "click".to_string()]);
        assert_eq!(unknown, ["click"]);
    }

    #[test]
    fn timit61_folds_to_39() {
        let set = PhoneSet::timit39();
        let timit61 = [
            "iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao", "oy", "ow", "uh", "uw",
            "ux", "er", "ax", "ix", "axr", "ax-h", "jh", "ch", "b", "d", "g", "p", "t", "k", "dx",
            "s", "sh", "z", "zh", "f", "th", "v", "dh", "m", "n", "ng", "em", "nx", "en", "eng",
            "l", "r", "w", "y", "hh", "hv", "el", "bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "q",
            "pau", "epi", "h#",
        ];
        assert_eq!(timit61.len(), 61);
        let mut folded = std::collections::BTreeSet::new();
        for phone in timit61 {
            match fold_timit61(phone) {
                Some(p) => {
                    assert!(set.id(&p).is_some(), "{phone} folds to {p}, not in the set");
                    folded.insert(p);
                }
                None => assert_eq!(phone, "q"),
            }
        }
        assert_eq!(folded.len(), 39);
        assert_eq!(fold_timit61("H#").as_deref(), Some("sil"));
        assert_eq!(fold_timit61("ax-h").as_deref(), Some("ah"));
    }

    #[test]
    fn ipa_reads_as_the_39_phones() {
        let set = PhoneSet::timit39();
        let parse = |text: &str| {
            set.parse_sequence(text, Path::new("hyp.txt"), 1)
                .map(|ids| set.format_sequence(&ids))
        };
        // What `--alphabet ipa` writes reads back as the phones it came from.
        let (ipa, _) = set.in_alphabet(Alphabet::Ipa);
        let every: Vec<&str> = ipa.names()[1..].iter().map(String::as_str).collect();
        assert_eq!(parse(&every.join(" ")).unwrap(), TIMIT39.join(" "));
        // Other recognisers' broad IPA, with diacritics, length, tie bars and the glottal stop.
        assert_eq!(
            parse("ð ə k w ɪ k b ɹ aʊ n f ɑː k s").unwrap(),
            "dh ah k w ih k b r aw n f aa k s"
        );
        assert_eq!(parse("tʰ iː t͡ʃ ʔ ɚ ˈoʊ ɡ ʒ").unwrap(), "t iy ch er ow g sh");
        assert!(parse("ʀ").is_err(), "not an English phone");
    }

    #[test]
    fn other_recognisers_tokens_fold_or_drop() {
        let phones = PhoneSet::timit39();
        let parse = |text: &str| {
            phones
                .parse_sequence(text, Path::new("hyp.txt"), 1)
                .map(|ids| phones.format_sequence(&ids))
        };
        // Kaldi: position-dependent phones, spoken noise, unknown-word and noise symbols.
        assert_eq!(
            parse("SIL AH1_B M_I IH0_E S_S SPN <unk> [noise] NSN_S SIL").unwrap(),
            "sil ah m ih s sil"
        );
        // pocketsphinx allphone: fillers between + signs, <sil> as silence, sentence marks.
        assert_eq!(
            parse("<s> SIL AH +NSN+ M +BREATH+ <sil> </s>").unwrap(),
            "sil ah m sil"
        );
        // Not a way around unknown phones, and IPA with combining marks still reads.
        assert!(parse("AH_X").is_err());
        assert!(parse("_I").is_err());
        assert_eq!(parse("ɑ̃ ə").unwrap(), "aa ah");
        assert_eq!(strip_word_position("ɑ̃"), "ɑ̃");
    }

    #[test]
    fn cmudict_folds_to_39() {
        assert_eq!(fold_cmudict("AO1"), "aa");
        assert_eq!(fold_cmudict("ZH"), "sh");
        assert_eq!(fold_cmudict("ER0"), "er");
        assert_eq!(fold_cmudict("HH"), "hh");
    }

    #[test]
    fn unknown_phone_names_file_and_line() {
        let set = PhoneSet::timit39();
        let err = set
            .parse_sequence("sil hh xx", Path::new("train.tsv"), 7)
            .unwrap_err()
            .to_string();
        assert!(err.contains("train.tsv:7"), "{err}");
        assert!(err.contains("'xx'"), "{err}");
    }

    #[test]
    fn cmudict_and_timit_spellings_fold_into_the_default_inventory() -> Result<()> {
        let set = PhoneSet::timit39();
        let ids = set.parse_sequence("HH AH0 L OW1 ao ZH ix axr q pau", Path::new("m.tsv"), 1)?;
        assert_eq!(set.format_sequence(&ids), "hh ah l ow aa sh ih er sil");
        // Neither a phone nor a spelling of one; the blank is never a label.
        for bad in ["xx1", "<blk>"] {
            let err = set
                .parse_sequence(bad, Path::new("m.tsv"), 2)
                .expect_err("refused");
            assert!(err.to_string().contains("m.tsv:2"), "{err}");
        }
        // A custom inventory takes its own names only.
        let custom = PhoneSet::from_phones(["a".to_string(), "eh".to_string()])?;
        assert!(custom.parse_sequence("EH1", Path::new("m.tsv"), 3).is_err());
        assert_eq!(
            custom.parse_sequence("EH a", Path::new("m.tsv"), 3)?.len(),
            2
        );
        Ok(())
    }

    #[test]
    fn custom_inventory_from_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("phones.txt");
        std::fs::write(&path, "# my phones\na\nB\n\nsil\n").map_err(|e| Error::io(&path, e))?;
        let set = PhoneSet::from_file(&path)?;
        assert_eq!(set.names(), &[BLANK_NAME, "a", "b", "sil"]);
        std::fs::write(&path, "a\nb\na\n").map_err(|e| Error::io(&path, e))?;
        let err = PhoneSet::from_file(&path).unwrap_err().to_string();
        assert!(err.contains(":3:") && err.contains("twice"), "{err}");
        Ok(())
    }

    #[test]
    fn serde_round_trip_keeps_lookup() {
        let set = PhoneSet::timit39();
        let json = serde_json::to_string(&set).unwrap();
        let back: PhoneSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        assert_eq!(back.id("ng"), set.id("ng"));
    }
}
