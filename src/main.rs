//! The `phonrec` command line: parse arguments, call the library, print. No work happens here.

use std::process::ExitCode;

use clap::FromArgMatches;

mod cli;

fn main() -> ExitCode {
    keep_freed_memory();
    phonrec::audio::quiet_decoder_panics();
    let matches = match cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(error) => {
            if let Some(hint) = subcommand_hint(&error) {
                eprintln!("{hint}");
                return ExitCode::from(2);
            }
            error.exit()
        }
    };
    let args = match cli::Cli::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    match cli::run(args, &matches) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("phonrec: error: {}", cli::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Training and batched inference allocate and free buffers of tens of MB per step. glibc serves
/// blocks over 32 MB with mmap and returns them on free, so every step page-faults them in again (~10 %
/// of a training step in `perf`). Serving everything from the heap and never trimming it keeps freed
/// blocks for the next step; peak memory is unchanged, it is just not handed back before exit.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// `phonrec speech.wav` (no subcommand, as some other tools take it): say how to transcribe it.
fn subcommand_hint(error: &clap::Error) -> Option<String> {
    if error.kind() != clap::error::ErrorKind::InvalidSubcommand {
        return None;
    }
    let given = std::env::args_os().nth(1)?;
    let path = std::path::Path::new(&given);
    let audio_like = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| cli::AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    (audio_like || path.exists()).then(|| {
        let rest: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!(
            "phonrec: error: '{}' is not a subcommand. To get its phonemes, run:\n  phonrec \
             transcribe {}\n(`phonrec --help` lists the subcommands)",
            path.display(),
            rest.join(" ")
        )
    })
}

/// `phonrec ... | head` closing the pipe early is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
