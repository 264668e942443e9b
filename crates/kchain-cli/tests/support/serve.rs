//! A `kchain serve` started by a test: on a free loopback port, its URL read from its first
//! line, stopped with SIGTERM when dropped (or by `stop`, which returns its exit code).

use std::io::{BufRead, BufReader};
use std::process::Child;

use super::Env;

pub struct Serving {
    pub child: Child,
    pub url: String,
}

impl Serving {
    /// `kchain serve --listen 127.0.0.1:0 ARGS` in `env`, once it listens.
    pub fn start(env: &Env, args: &[&str]) -> Serving {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = env.command(&all).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("kchain serve listening on ")
            .unwrap_or_else(|| panic!("no listening line: {line:?}"))
            .to_owned();
        Serving { child, url }
    }

    /// Stops the server with SIGTERM and waits for it; its exit code.
    pub fn stop(mut self) -> Option<i32> {
        self.terminate();
        self.child.wait().unwrap().code()
    }

    fn terminate(&self) {
        // SAFETY: a plain kill(2) of the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.child.wait();
    }
}
