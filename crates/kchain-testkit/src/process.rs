//! Running one test of the current test binary in a child process: for crash tests that kill
//! a writer or a sealer (SIGKILL) at random moments and check what it left behind.
//!
//! The child test finds out that it is the child from an environment variable the parent sets
//! on the returned [`Command`], and returns at once when the variable is absent (so that it
//! passes as a no-op when the whole suite runs).

use std::process::Command;

/// A command that runs exactly the test `name` of this test binary, alone and with its output
/// shown (`<exe> --exact <name> --nocapture --test-threads=1`). Add the environment that
/// makes it act as the child, then spawn it.
pub fn test_in_child(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the path of this test binary");
    let mut command = Command::new(exe);
    command.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    command
}
