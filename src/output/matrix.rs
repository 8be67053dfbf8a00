//! Feature matrices `[frames, dims]` as NumPy `.npy`, CSV, TSV or a Kaldi text archive.

use std::io::Write;

use ndarray::ArrayView2;
use ndarray_npy::WriteNpyExt;

use crate::choice::{Choice, Named};

/// How a matrix is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixFormat {
    /// NumPy `.npy`, float32 `[frames, dims]`.
    Npy,
    /// Comma-separated, one frame per line, no header.
    Csv,
    /// Tab-separated, one frame per line, no header.
    Tsv,
    /// Kaldi text archive (what `copy-feats ark,t:` writes): `key  [`, one frame per line, `]`.
    KaldiText,
}

impl Choice for MatrixFormat {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: MatrixFormat::Npy,
            name: "npy",
            help: "NumPy .npy, float32 [frames, dims]",
        },
        Named {
            value: MatrixFormat::Csv,
            name: "csv",
            help: "Comma-separated, one frame per line, no header",
        },
        Named {
            value: MatrixFormat::Tsv,
            name: "tsv",
            help: "Tab-separated, one frame per line, no header",
        },
        Named {
            value: MatrixFormat::KaldiText,
            name: "ark",
            help: "Kaldi text archive (`copy-feats ark,t:`), keyed by the file's stem",
        },
    ];
}

impl MatrixFormat {
    /// The file extension of this format.
    pub fn extension(self) -> &'static str {
        match self {
            MatrixFormat::Npy => "npy",
            MatrixFormat::Csv => "csv",
            MatrixFormat::Tsv => "tsv",
            MatrixFormat::KaldiText => "ark",
        }
    }

    /// The format a file name's extension asks for (`.npy`, `.csv`, `.tsv`, `.ark`), if any.
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "npy" => Some(MatrixFormat::Npy),
            "csv" => Some(MatrixFormat::Csv),
            "tsv" => Some(MatrixFormat::Tsv),
            "ark" => Some(MatrixFormat::KaldiText),
            _ => None,
        }
    }
}

/// The archive key Kaldi would accept for `name`: whitespace and control characters become `_` (a
/// key ends at the first space), and an empty name becomes `utt`.
pub fn kaldi_key(name: &str) -> String {
    if name.is_empty() {
        "utt".to_string()
    } else {
        // Kaldi's tokens are printable: a control character (as whitespace) would be refused by
        // its readers (`IsToken`), or split the line.
        name.replace(|c: char| c.is_whitespace() || c.is_control(), "_")
    }
}

/// Write `matrix` in `format`. `key` names the matrix in a Kaldi archive (see [`kaldi_key`]); it is
/// refused if it is empty or holds whitespace, which would make the archive unreadable.
pub fn write_matrix(
    matrix: ArrayView2<f32>,
    format: MatrixFormat,
    key: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        MatrixFormat::Npy => matrix
            .write_npy(out)
            .map_err(|e| std::io::Error::other(e.to_string())),
        MatrixFormat::Csv | MatrixFormat::Tsv => {
            let separator = if format == MatrixFormat::Csv {
                ","
            } else {
                "\t"
            };
            for row in matrix.rows() {
                let line: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                writeln!(out, "{}", line.join(separator))?;
            }
            Ok(())
        }
        MatrixFormat::KaldiText => {
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "a Kaldi archive key must be non-empty without whitespace, got {key:?}"
                    ),
                ));
            }
            write!(out, "{key}  [")?;
            for row in matrix.rows() {
                write!(out, "\n ")?;
                for v in row {
                    write!(out, " {v}")?;
                }
            }
            writeln!(out, " ]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn written(format: MatrixFormat, key: &str) -> String {
        let m = array![[1.0f32, -2.5], [0.125, 3.0]];
        let mut out = Vec::new();
        write_matrix(m.view(), format, key, &mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn text_formats_hold_every_value_exactly() {
        assert_eq!(written(MatrixFormat::Csv, "k"), "1,-2.5\n0.125,3\n");
        assert_eq!(written(MatrixFormat::Tsv, "k"), "1\t-2.5\n0.125\t3\n");
        assert_eq!(
            written(MatrixFormat::KaldiText, "utt1"),
            "utt1  [\n  1 -2.5\n  0.125 3 ]\n"
        );
    }

    #[test]
    fn kaldi_keys_never_hold_whitespace() {
        assert_eq!(kaldi_key("my file"), "my_file");
        assert_eq!(kaldi_key("ctl\u{1}\u{1f}.wav"), "ctl__.wav");
        assert_eq!(kaldi_key(""), "utt");
        let m = array![[1.0f32]];
        let error = write_matrix(m.view(), MatrixFormat::KaldiText, "a b", &mut Vec::new())
            .expect_err("a key with a space");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn npy_reads_back() {
        let m = array![[1.0f32, -2.5], [0.125, 3.0]];
        let mut out = Vec::new();
        write_matrix(m.view(), MatrixFormat::Npy, "k", &mut out).expect("write");
        let back: ndarray::Array2<f32> = ndarray_npy::ReadNpyExt::read_npy(&out[..]).expect("read");
        assert_eq!(back, m);
    }

    #[test]
    fn extensions_pick_formats() {
        assert_eq!(
            MatrixFormat::from_extension("ARK"),
            Some(MatrixFormat::KaldiText)
        );
        assert_eq!(MatrixFormat::from_extension("npy"), Some(MatrixFormat::Npy));
        assert_eq!(MatrixFormat::from_extension("wav"), None);
    }
}
