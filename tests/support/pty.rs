//! A real program in a real pseudo-terminal, read through a vt100 parser:
//! how the interop tests drive OpenSSH `ssh -tt` exactly as a person's
//! terminal would (OpenSSH behaves differently when its stdin is a tty).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A child process on the slave side of a pty; the test holds the master.
pub struct PtyChild {
    child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<(vt100::Parser, Vec<u8>)>>,
}

impl PtyChild {
    /// Starts `cmd` as the session leader of a new `cols` x `rows` pty.
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> PtyChild {
        let (master, slave) = open_pty(cols, rows);
        let for_stdout = slave.try_clone().expect("dup");
        let for_stderr = slave.try_clone().expect("dup");
        cmd.stdin(Stdio::from(slave))
            .stdout(Stdio::from(for_stdout))
            .stderr(Stdio::from(for_stderr));
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork
        // and exec, as `pre_exec` requires.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn in a pty");
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new((
            vt100::Parser::new(
                std::num::NonZeroU16::new(rows).expect("rows"),
                std::num::NonZeroU16::new(cols).expect("cols"),
                0,
            ),
            Vec::new(),
        )));
        let mut reader = master.try_clone().expect("dup master");
        let feed = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends with EIO once the child and its descendants closed the
            // slave side.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = feed.lock().unwrap_or_else(|e| e.into_inner());
                s.0.process(&buf[..n]);
                s.1.extend_from_slice(&buf[..n]);
            }
        });
        PtyChild {
            child,
            master,
            screen,
        }
    }

    /// The screen as the person sees it now.
    pub fn text(&self) -> String {
        let s = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        s.0.screen().contents()
    }

    /// Everything the terminal received so far.
    pub fn raw(&self) -> String {
        let s = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&s.1).into_owned()
    }

    /// Types `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Waits until `pred(screen text)` holds; false after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.text()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// As [`PtyChild::wait_for`], failing the test with the screen when the
    /// screen never satisfies `pred`.
    pub async fn expect(&self, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let held = self.wait_for(timeout, pred).await;
        assert!(held, "{}", self.text());
    }

    /// Waits for the child to exit: its exit code (`None`: a signal), or a
    /// panic after `timeout` (the child is killed first).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "the program in the pty did not exit within {timeout:?}; screen:\n{}",
                    self.text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open_pty(cols: u16, rows: u16) -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the given ints; the name
    // and termios pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned
    // by nothing else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}
