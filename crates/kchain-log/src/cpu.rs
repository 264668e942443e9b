//! CPU time, for the benchmarks that report CPU seconds beside wall time (`kchain bench`'s
//! appends, bridge and archive runs, the ledger's bench, the log's own profiling tests): a
//! process's, a thread's, or another process's by pid.
//!
//! This process's and this thread's come from the kernel's CPU clocks
//! (`CLOCK_PROCESS_CPUTIME_ID`, `CLOCK_THREAD_CPUTIME_ID`), to the nanosecond: a raw append
//! of 0.15 s is measured as finely as a ledger run of seconds. Another process's comes from
//! Linux's `/proc`, which counts user and system time in clock ticks of `USER_HZ`, exported
//! as 100 a second on every architecture Linux runs on (`sysconf(_SC_CLK_TCK)`): a
//! resolution of 10 ms, for measurements that last hundreds of ticks.

use std::io;

/// Clock ticks a second in `/proc/*/stat` (Linux's `USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of this process so far, every thread (living or ended) counted;
/// `None` where the clock cannot be read.
pub fn process() -> Option<f64> {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// User + system CPU seconds of the calling thread so far; `None` where the clock cannot be
/// read.
pub fn thread() -> Option<f64> {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a CPU clock id and a pointer to a timespec this function owns.
    match unsafe { libc::clock_gettime(id, &mut ts) } {
        0 => Some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9),
        _ => None,
    }
}

/// User + system CPU seconds of process `pid` so far (a broker or a store server the bench
/// started beside kchain); an error naming the file when it cannot be read or holds no
/// CPU times.
pub fn of_pid(pid: u32) -> io::Result<f64> {
    read(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds from the text of a `/proc/.../stat` file, `None` when it holds
/// no CPU times. The command name (field 2, in parentheses) may hold spaces and parentheses;
/// the fields after its last `)` do not: the state is field 3, utime and stime are fields 14
/// and 15.
pub fn from_stat(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let mut ticks = || fields.next()?.parse::<u64>().ok();
    let (user, system) = (ticks()?, ticks()?);
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

fn read(path: &str) -> io::Result<f64> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
    from_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: no CPU times in it"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_after_a_name_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        let stat = "42 (a (b) c) R 1 42 42 0 -1 4194304 100 0 0 0 250 75 0 0 20 0";
        assert_eq!(from_stat(stat), Some(3.25));
        assert_eq!(from_stat("42 (x) R 1 2"), None);
        assert_eq!(from_stat("no parenthesis"), None);
    }

    #[test]
    fn this_process_and_thread_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // not Linux: nothing to read
        }
        let (process0, thread0) = (process().unwrap(), thread().unwrap());
        // Busy until the thread's and the process's clocks have moved two of `/proc`'s ticks
        // (20 ms), on a loaded machine too, so that `/proc`'s count for this process, which
        // drops what is short of a tick, has moved past where the clock started.
        let grew = || thread().unwrap() > thread0 + 0.02 && process().unwrap() > process0 + 0.02;
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while !grew() && started.elapsed().as_secs() < 10 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
        }
        assert!(thread().unwrap() > thread0, "thread CPU time grew");
        assert!(process().unwrap() > process0, "process CPU time grew");
        assert!(of_pid(std::process::id()).unwrap() > process0);
        let err = of_pid(0).unwrap_err().to_string();
        assert!(err.contains("/proc/0/stat"), "{err}");
    }
}
