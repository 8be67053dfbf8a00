//! The `phonrec` command line: parse arguments, call the library, print. No work happens here.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

mod cli;

fn main() -> ExitCode {
    keep_freed_memory();
    let matches = cli::Cli::command().get_matches();
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

/// `phonrec ... | head` closing the pipe early is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
