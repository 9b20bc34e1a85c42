//! Asking the operator for a user name and a password: on a terminal, the password is read
//! with echo off (as `docker login` and `sudo` do), so it never reaches the screen or the
//! scrollback; from a pipe, standard input is read whole.
//!
//! The terminal is handled with termios through `libc` (already a dependency) rather than a
//! crate such as rpassword, for one reason: airlock catches SIGINT (interrupt.rs) instead of
//! dying on it, so a read that blocks until Enter would hold a Ctrl-C at the prompt until the
//! watchdog exits the process, with echo still off. Here the read waits in `poll` for at most
//! 100 ms at a time, sees the signal, and puts the terminal back before returning.

use std::io::{self, IsTerminal as _, Read as _, Write as _};

use anyhow::{bail, Context as _, Result};

/// Longest line accepted at a prompt.
const MAX_LINE: usize = 4096;

/// Whether standard input is a terminal (a person can be asked).
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// The password of `--password-stdin` for `user` at `host`: asked for without echo when
/// standard input is a terminal, else standard input read whole (one trailing newline
/// dropped). Empty is refused.
pub fn password_stdin(user: &str, host: &str) -> Result<String> {
    let password = if stdin_is_terminal() {
        ask(&format!("Password for {user} at {host}: "), false)?
    } else {
        let mut password = String::new();
        io::stdin()
            .read_to_string(&mut password)
            .context("reading the password from standard input")?;
        password.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        bail!("--password-stdin: standard input was empty; pipe the password in, e.g. `cat pw.txt | airlock ... --username {user} --password-stdin`");
    }
    Ok(password)
}

/// Asks on the terminal of standard input: the prompt goes to standard error, the answer is
/// one line, echoed only when `echo`.
pub fn ask(prompt: &str, echo: bool) -> Result<String> {
    let fd = libc::STDIN_FILENO;
    // Echo goes off before the prompt shows: whatever is typed after it is never echoed.
    let quiet = if echo { None } else { Some(EchoOff::new(fd)?) };
    let mut stderr = io::stderr();
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
    let line = read_line(fd);
    drop(quiet);
    if !echo {
        // The Enter that ended the line was not echoed either.
        let _ = writeln!(stderr);
    }
    let line = line?;
    let text = String::from_utf8(line).context("the answer is not UTF-8")?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads up to a newline (or the end of input) from `fd`, giving up when a signal arrived.
fn read_line(fd: libc::c_int) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        airlock::interrupt::check()?;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut p, 1, 100) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("waiting for the terminal");
        }
        if ready == 0 {
            continue;
        }
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("reading the terminal");
        }
        if n == 0 {
            return Ok(line);
        }
        line.extend_from_slice(&buf[..n as usize]);
        if line.contains(&b'\n') {
            return Ok(line);
        }
        if line.len() > MAX_LINE {
            bail!("the answer is longer than {MAX_LINE} bytes");
        }
    }
}

/// Turns the terminal's echo off until dropped.
struct EchoOff {
    fd: libc::c_int,
    saved: libc::termios,
}

impl EchoOff {
    fn new(fd: libc::c_int) -> Result<EchoOff> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a termios.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error()).context("reading the terminal's settings");
        }
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
        // SAFETY: a valid pointer to a termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
            return Err(io::Error::last_os_error()).context("turning the terminal's echo off");
        }
        Ok(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: a valid pointer to the termios read at the start.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}
