//! SIGINT and SIGTERM as a request to stop cleanly: commands that stream (`produce`,
//! `consume` when it follows) poll [`requested`] between records, flush what they hold, print
//! a summary and exit normally, instead of dying with work in memory.
//!
//! The handler only stores the signal number in an atomic (all a signal handler may safely
//! do) and is installed with `SA_RESETHAND`: a second Ctrl-C gets the default action and ends
//! a process that does not stop fast enough.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked to stop, 0 while none has.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM (once is enough; again does no harm).
pub fn watch() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is async-signal-safe (one atomic store); the sigaction struct
        // is fully initialised (zeroed, then the handler, an empty mask and the flags).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The name of the signal that asked to stop (`SIGINT`, `SIGTERM`), if one has.
pub fn requested() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => Some("a signal"),
    }
}
