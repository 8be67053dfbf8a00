//! clap parsing for the library's named option sets ([`phonrec::choice::Choice`]): the names, their
//! help and clap's usual "possible values" errors, without the library depending on clap.

use std::ffi::OsStr;
use std::marker::PhantomData;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use phonrec::choice::Choice;

/// Parses one of `T`'s names into `T`; `--help` lists every name with its help (or, for a command
/// that takes only some of them, those).
#[derive(Clone, Copy, Debug)]
pub struct ChoiceParser<T> {
    /// The names this command accepts; `None`: all of `T`'s.
    only: Option<&'static [&'static str]>,
    /// Help that replaces `T`'s own for some names, where this command's output differs (live's
    /// `text` is a line per utterance, not per file).
    help: &'static [(&'static str, &'static str)],
    kind: PhantomData<T>,
}

/// The parser for `T`: `#[arg(long, value_parser = choice::<OutputFormat>())]`.
pub fn choice<T: Choice>() -> ChoiceParser<T> {
    ChoiceParser {
        only: None,
        help: &[],
        kind: PhantomData,
    }
}

/// The parser for those of `T`'s values named in `names` (a command that cannot produce the
/// others), so that `--help` and the error for another name list only these.
pub fn choice_among<T: Choice>(names: &'static [&'static str]) -> ChoiceParser<T> {
    ChoiceParser {
        only: Some(names),
        help: &[],
        kind: PhantomData,
    }
}

impl<T: Choice> ChoiceParser<T> {
    /// The same parser, `--help` giving `help`'s text for the names it lists.
    pub fn with_help(self, help: &'static [(&'static str, &'static str)]) -> Self {
        ChoiceParser { help, ..self }
    }

    fn values(&self) -> impl Iterator<Item = PossibleValue> + '_ {
        T::CHOICES
            .iter()
            .filter(|c| self.only.is_none_or(|names| names.contains(&c.name)))
            .map(|c| {
                let help = self
                    .help
                    .iter()
                    .find(|(name, _)| *name == c.name)
                    .map_or(c.help, |(_, help)| help);
                PossibleValue::new(c.name).help(help)
            })
    }
}

impl<T: Choice + Clone> TypedValueParser for ChoiceParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        // clap's own parser gives the usual messages ("invalid value ... [possible values: ...]").
        let name = PossibleValuesParser::new(self.values()).parse_ref(cmd, arg, value)?;
        T::from_name(&name)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.values()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonrec::output::OutputFormat;

    #[test]
    fn a_subset_parser_lists_and_takes_only_its_names() {
        let parser = choice_among::<OutputFormat>(&["text", "json"]);
        let names: Vec<String> = parser
            .possible_values()
            .expect("listed")
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(names, ["text", "json"]);
        let cmd = clap::Command::new("t");
        assert!(parser.parse_ref(&cmd, None, OsStr::new("json")).is_ok());
        assert!(parser.parse_ref(&cmd, None, OsStr::new("ctm")).is_err());
        assert!(choice::<OutputFormat>()
            .parse_ref(&cmd, None, OsStr::new("ctm"))
            .is_ok());
    }
}
