//! Output files (`-o`, `--output-dir`, `--png`, ...) written whole or not at all, and never over
//! one of the run's inputs.
//!
//! A run's output goes to a temporary file beside the destination, renamed over it when the run
//! has written everything: a run that fails on a bad option or an unreadable file leaves the
//! previous output as it was, and a reader never sees half a file. Destinations that are not
//! regular files (`/dev/null`, `/dev/stdout`, a named pipe) are written directly: renaming over
//! them would replace the device or the pipe.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// An output file being written: [`commit`](Self::commit) puts it in place; dropped without a
/// commit (an error on the way), its temporary file is removed and the destination is untouched.
pub(crate) struct OutputFile {
    /// The destination as the user named it (for messages).
    path: PathBuf,
    /// Where the bytes go until the commit, and the file they are renamed over; `None` when the
    /// destination is written directly.
    rename: Option<(PathBuf, PathBuf)>,
    writer: Option<BufWriter<File>>,
}

impl OutputFile {
    /// Start writing `path`.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        // A symbolic link is followed, so that the file it names is replaced, not the link.
        let destination = match std::fs::canonicalize(path) {
            Ok(resolved) => resolved,
            Err(_) => path.to_path_buf(),
        };
        let direct = std::fs::metadata(&destination).is_ok_and(|m| !m.is_file());
        if direct {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            return Ok(OutputFile {
                path: path.to_path_buf(),
                rename: None,
                writer: Some(BufWriter::new(file)),
            });
        }
        let temporary = temporary_beside(&destination)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let file = File::create(&temporary).with_context(|| {
            format!(
                "cannot create {} (as {})",
                path.display(),
                temporary.display()
            )
        })?;
        if let Ok(existing) = std::fs::metadata(&destination) {
            // The new file keeps the permissions of the one it replaces. Best effort.
            let _ = file.set_permissions(existing.permissions());
        }
        Ok(OutputFile {
            path: path.to_path_buf(),
            rename: Some((temporary, destination)),
            writer: Some(BufWriter::new(file)),
        })
    }

    /// Flush and put the file in place.
    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        if let Some((temporary, destination)) = self.rename.take() {
            drop(file);
            if let Err(error) = std::fs::rename(&temporary, &destination) {
                let _ = std::fs::remove_file(&temporary);
                return Err(error).with_context(|| format!("cannot write {}", self.path.display()));
            }
        }
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match &mut self.writer {
            Some(writer) => writer.write(bytes),
            None => Err(std::io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.writer {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let (Some(writer), Some((temporary, _))) = (self.writer.take(), &self.rename) {
            drop(writer);
            // Best effort: an uncommitted output is abandoned, the destination left as it was.
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// Where a command's streamed output goes: standard output, a file (`-o`), or nowhere (each
/// input written to its own file instead).
pub(crate) enum Destination {
    Stdout(std::io::StdoutLock<'static>),
    File(OutputFile),
    Nowhere,
}

impl Destination {
    /// Standard output without a path, else the file.
    pub(crate) fn to(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(match path {
            None => Destination::Stdout(std::io::stdout().lock()),
            Some(path) => Destination::File(OutputFile::create(path)?),
        })
    }

    /// Flush standard output, or put the file in place.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        match self {
            Destination::Stdout(mut out) => out.flush().context("cannot write standard output"),
            Destination::File(file) => file.commit(),
            Destination::Nowhere => Ok(()),
        }
    }
}

impl Write for Destination {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Destination::Stdout(out) => out.write(bytes),
            Destination::File(file) => file.write(bytes),
            Destination::Nowhere => Ok(bytes.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Destination::Stdout(out) => out.flush(),
            Destination::File(file) => file.flush(),
            Destination::Nowhere => Ok(()),
        }
    }
}

/// The temporary file beside `path`: its name with `.partial` added, so that a run killed while
/// writing leaves a file that says what it is, which the next run overwrites.
fn temporary_beside(path: &Path) -> anyhow::Result<PathBuf> {
    if path.file_name().is_none() {
        anyhow::bail!("{} is not a file path", path.display());
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    Ok(PathBuf::from(name))
}

/// Write `bytes` to `path` whole or not at all (see [`OutputFile`]).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = OutputFile::create(path)?;
    out.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    out.commit()
}

/// Refuse an output path that is one of the inputs (a recording, a manifest): the output would
/// replace it.
pub(crate) fn refuse_overwriting_inputs<'a>(
    output: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> anyhow::Result<()> {
    // An output that does not exist yet cannot be an input, and a device is not overwritten.
    let Ok(output_meta) = std::fs::metadata(output) else {
        return Ok(());
    };
    if !output_meta.is_file() {
        return Ok(());
    }
    let output_id = file_identity(output, &output_meta);
    for input in inputs {
        let Ok(meta) = std::fs::metadata(input) else {
            continue;
        };
        if meta.is_file() && file_identity(input, &meta) == output_id {
            anyhow::bail!(
                "the output {} is also an input ({}): writing it would destroy the input; choose \
                 another output file",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// What tells two paths of one file apart from two files: the device and inode where there are
/// such, else the canonical path.
#[cfg(unix)]
fn file_identity(_path: &Path, meta: &std::fs::Metadata) -> (u64, u64, Option<PathBuf>) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), None)
}

#[cfg(not(unix))]
fn file_identity(path: &Path, _meta: &std::fs::Metadata) -> (u64, u64, Option<PathBuf>) {
    (0, 0, std::fs::canonicalize(path).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_output_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").expect("write");
        {
            let mut out = OutputFile::create(&path).expect("create");
            out.write_all(b"half of the new").expect("write");
            // Dropped without a commit: a run that failed.
        }
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    #[test]
    fn a_committed_output_replaces_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").expect("write");
        let mut out = OutputFile::create(&path).expect("create");
        out.write_all(b"new").expect("write");
        out.commit().expect("commit");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_written_directly() {
        use std::os::unix::fs::FileTypeExt;
        let mut out = OutputFile::create(Path::new("/dev/null")).expect("create");
        out.write_all(b"anything").expect("write");
        out.commit().expect("commit");
        let kind = std::fs::metadata("/dev/null").expect("stat").file_type();
        assert!(kind.is_char_device());
    }

    #[test]
    fn an_input_named_as_the_output_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("a.wav");
        std::fs::write(&input, "RIFF").expect("write");
        let other = dir.path().join("b.wav");
        std::fs::write(&other, "RIFF").expect("write");
        // The same file under another spelling is caught too.
        let spelled = dir.path().join(".").join("a.wav");
        let error = refuse_overwriting_inputs(&spelled, [other.as_path(), input.as_path()])
            .expect_err("refused");
        assert!(error.to_string().contains("is also an input"), "{error}");
        assert!(refuse_overwriting_inputs(&other, [input.as_path()]).is_ok());
        assert!(refuse_overwriting_inputs(&dir.path().join("new.txt"), [input.as_path()]).is_ok());
    }
}
