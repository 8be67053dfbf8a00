//! Closed sets of named options (an output format, an optimiser, a weight initialisation): their
//! names as a user types them and a line of help each, kept beside the type. Front ends build their
//! parsers from [`Choice::CHOICES`] (the CLI's `--format`, `--optimizer`, ...), so the library
//! depends on no argument parser and the names live in one place.

/// One option of a [`Choice`]: the value, its name (kebab-case), and a line of help.
#[derive(Clone, Copy, Debug)]
pub struct Named<T: 'static> {
    /// The value.
    pub value: T,
    /// What a user types.
    pub name: &'static str,
    /// What the option does, in one line.
    pub help: &'static str,
}

/// A type whose values form a closed, named set.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    /// Every value, in the order help lists them.
    const CHOICES: &'static [Named<Self>];

    /// The value's name.
    fn name(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|c| c.value == self)
            .map_or("?", |c| c.name)
    }

    /// The value of `name` (exact, case-sensitive), if there is one.
    fn from_name(name: &str) -> Option<Self> {
        Self::CHOICES
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }

    /// Every name, in order.
    fn names() -> Vec<&'static str> {
        Self::CHOICES.iter().map(|c| c.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::ProbsFormat;
    use crate::model::{LstmKernel, WeightInit, WeightStorage};
    use crate::output::{MatrixFormat, OutputFormat};
    use crate::train::OptimizerKind;

    fn check<T: Choice + std::fmt::Debug>() {
        let names = T::names();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for c in T::CHOICES {
            assert_eq!(T::from_name(c.name), Some(c.value));
            assert_eq!(c.value.name(), c.name);
            assert!(!c.help.is_empty());
            assert!(c
                .name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'));
        }
        assert_eq!(T::from_name("no-such-option"), None);
    }

    #[test]
    fn every_choice_round_trips_its_names() {
        check::<OutputFormat>();
        check::<ProbsFormat>();
        check::<MatrixFormat>();
        check::<OptimizerKind>();
        check::<WeightInit>();
        check::<WeightStorage>();
        check::<LstmKernel>();
        assert_eq!(OptimizerKind::SgdMomentum.name(), "sgd-momentum");
        assert_eq!(
            WeightInit::from_name("xavier-uniform"),
            Some(WeightInit::XavierUniform)
        );
    }
}
