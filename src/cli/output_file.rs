//! Output files (`-o`, `--output-dir`, `--png`, ...) written whole or not at all, and never over
//! one of the run's inputs.
//!
//! A run's output goes to a temporary file beside the destination, renamed over it when the run
//! has written everything: a run that fails on a bad option or an unreadable file leaves the
//! previous output as it was, and a reader never sees half a file. Destinations that are not
//! regular files (`/dev/null`, a named pipe) are written directly: renaming over them would replace
//! the device or the pipe. `-`, `/dev/stdout` and the like write through the process's own
//! descriptor, so a shell redirect behind them (`>> log`) is appended to, not replaced.

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
        // `-`, `/dev/stdout`, `/dev/fd/1`, ...: the open descriptor itself, so that a redirect
        // (`>> log`) is appended to as the shell set it up. Resolving the link and renaming a new
        // file over its target replaced the user's log.
        if let Some(fd) = own_descriptor(path) {
            let file = descriptor_file(fd, path)?;
            return Ok(OutputFile {
                path: path.to_path_buf(),
                rename: None,
                writer: Some(BufWriter::new(file)),
            });
        }
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

/// The descriptor of this process that `path` names, directly or through symbolic links: `-` is
/// standard output; `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` and `/proc/self/fd/N`.
pub(crate) fn own_descriptor(path: &Path) -> Option<u32> {
    if path.as_os_str() == "-" {
        return Some(1);
    }
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        let text = current.to_str()?;
        let own = format!("/proc/{}/fd/", std::process::id());
        let number = match text {
            "/dev/stdout" => Some("1"),
            "/dev/stderr" => Some("2"),
            "/dev/stdin" => Some("0"),
            _ => ["/dev/fd/", "/proc/self/fd/", own.as_str()]
                .iter()
                .find_map(|prefix| text.strip_prefix(prefix)),
        };
        if let Some(fd) = number.and_then(|n| n.parse().ok()) {
            return Some(fd);
        }
        let target = std::fs::read_link(&current).ok()?;
        current = match current.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
    }
    None
}

/// Refuse a model output that is a stream (`-`, `/dev/stdout`, ...): a model file is written
/// beside its destination and renamed over it, which would replace the link, not write the stream.
pub(crate) fn refuse_stream_for_model(path: &Path) -> anyhow::Result<()> {
    if own_descriptor(path).is_some() {
        anyhow::bail!(
            "{} is a stream: a model is written to a file (give a file name with -o)",
            path.display()
        );
    }
    Ok(())
}

/// A file that writes through descriptor `fd` of this process (`path` names it, for messages).
fn descriptor_file(fd: u32, path: &Path) -> anyhow::Result<File> {
    use std::os::fd::AsFd;
    let cloned = match fd {
        1 => std::io::stdout().as_fd().try_clone_to_owned(),
        2 => std::io::stderr().as_fd().try_clone_to_owned(),
        0 => anyhow::bail!("{} is standard input, not an output", path.display()),
        // Another inherited descriptor (`3>>log`): opened again in append mode, never truncated
        // or renamed over.
        _ => {
            return std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))
        }
    };
    Ok(File::from(cloned.with_context(|| {
        format!("cannot write {}", path.display())
    })?))
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

/// The files a Kaldi data dir among `inputs` is read from (`wav.scp`, `text`, `segments`, ...),
/// for [`refuse_overwriting_inputs`]: `-o data/test/text` is an easy slip (Kaldi names hypotheses
/// `text` too) that would replace the references. Other inputs are left out.
pub(crate) fn data_dir_files<'a>(inputs: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    const KALDI_FILES: [&str; 7] = [
        "wav.scp",
        "text",
        "segments",
        "utt2spk",
        "spk2utt",
        "reco2file_and_channel",
        "utt2dur",
    ];
    inputs
        .into_iter()
        .filter(|dir| dir.join("wav.scp").is_file())
        .flat_map(|dir| KALDI_FILES.map(|name| dir.join(name)))
        .collect()
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

    #[test]
    fn standard_streams_are_named_by_their_descriptors() {
        assert_eq!(own_descriptor(Path::new("-")), Some(1));
        assert_eq!(own_descriptor(Path::new("/dev/stdout")), Some(1));
        assert_eq!(own_descriptor(Path::new("/dev/stderr")), Some(2));
        assert_eq!(own_descriptor(Path::new("/proc/self/fd/7")), Some(7));
        assert_eq!(own_descriptor(Path::new("out.txt")), None);
        // Through a link of the user's own.
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("to-stderr");
        std::os::unix::fs::symlink("/dev/stderr", &link).expect("link");
        assert_eq!(own_descriptor(&link), Some(2));
        assert!(refuse_stream_for_model(&link).is_err());
        assert!(refuse_stream_for_model(&dir.path().join("m.safetensors")).is_ok());
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
