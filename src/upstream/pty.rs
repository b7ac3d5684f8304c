//! Programs the bastion runs for a person in a pty of its own: the native
//! client of a database asset (`psql`), whose terminal the relay pumps like
//! an SSH target's channel ([`super::TargetEnd`]).
//!
//! The program runs in a sandbox ([`Sandbox`]) because the person drives
//! it: a client that can run a shell (`\!` in psql) or open connections
//! of its own would be a way around the bastion. Each layer is set up in
//! the child between fork and exec, and a layer that cannot be set up
//! fails the spawn (fail closed):
//! - its own session and controlling terminal (the pty's slave);
//! - an empty network namespace: no interface but a loopback of its own,
//!   so the client reaches nothing but the Unix socket of the bastion's
//!   wire proxy in its private directory;
//! - as root, a uid and gid of its own with no supplementary groups;
//! - no new privileges, and a seccomp filter that refuses `execve`: the
//!   program itself is started with `execveat`, and every way a client
//!   starts another program (`system`, `popen`, `posix_spawn`) goes through
//!   `execve`, which then fails with EPERM.
//!
//! Must never: let the program keep a descriptor of the bastion's (every
//! one the bastion opens is close-on-exec), or outlive its session (the
//! whole process group is killed when the [`Terminal`] goes).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use russh::ChannelMsg;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// What to run.
#[derive(Debug, Clone)]
pub struct Program {
    /// An executable file (not a script: a script's interpreter would be a
    /// second exec, which the sandbox refuses).
    pub path: PathBuf,
    /// The arguments after the program's name.
    pub args: Vec<String>,
    /// The whole environment: nothing of the bastion's own is passed.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub dir: PathBuf,
    pub cols: u16,
    pub rows: u16,
}

/// How the program is confined (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Sandbox {
    /// Run as this uid (and gid of the same number), without groups. Only
    /// root can: `None` keeps the bastion's own user.
    pub uid: Option<u32>,
    /// An empty network namespace. Without root this needs unprivileged
    /// user namespaces.
    pub own_network: bool,
    /// Refuse `execve` after the program started.
    pub no_exec: bool,
}

/// How many bytes the program may have written that the relay has not
/// taken yet: beyond that it blocks on its terminal, as it would on a slow
/// ssh connection.
const QUEUE: usize = 8;
const CHUNK: usize = 32 * 1024;

/// The bastion's end of the program's terminal: keys in, size, signals.
/// Dropping it kills the program's process group.
#[derive(Debug)]
pub struct Terminal {
    master: Arc<AsyncFd<OwnedFd>>,
    pid: libc::pid_t,
    reaped: Arc<AtomicBool>,
}

/// What the program writes, then its exit status, EOF and close, as
/// channel messages for the relay.
#[derive(Debug)]
pub struct Output {
    rx: mpsc::Receiver<ChannelMsg>,
}

impl Output {
    pub async fn recv(&mut self) -> Option<ChannelMsg> {
        self.rx.recv().await
    }
}

impl super::TargetEvents for Output {
    async fn next(&mut self) -> Option<ChannelMsg> {
        self.recv().await
    }
}

/// Starts `program` on a new pty, confined by `sandbox`.
pub fn spawn(program: &Program, sandbox: Sandbox) -> io::Result<(Terminal, Output)> {
    let (master, slave) = open_pty(program.cols, program.rows)?;
    let exec = Exec::new(program)?;
    let as_root = rustix::process::geteuid().is_root();
    if sandbox.uid.is_some() && !as_root {
        return Err(io::Error::other(
            "a sandbox uid needs the bastion to run as root",
        ));
    }
    let filter = if sandbox.no_exec {
        Some(seccomp::Filter::no_execve()?)
    } else {
        None
    };
    let mut command = Command::new(&program.path);
    command
        .current_dir(&program.dir)
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: the closure runs in the forked child before exec. It only
    // makes system calls on memory prepared before the fork (`exec`,
    // `filter`); it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if sandbox.own_network {
                let flags = if as_root {
                    libc::CLONE_NEWNET
                } else {
                    libc::CLONE_NEWUSER | libc::CLONE_NEWNET
                };
                if libc::unshare(flags) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(uid) = sandbox.uid
                && (libc::setgroups(0, std::ptr::null()) < 0
                    || libc::setgid(uid) < 0
                    || libc::setuid(uid) < 0)
            {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(filter) = &filter {
                filter.install()?;
            }
            Err(exec.run())
        });
    }
    let child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    // SAFETY: an OwnedFd's descriptor stays open, and the same, for as
    // long as it is owned, and the AsyncFd owns it.
    let master = Arc::new(unsafe { AsyncFd::register(master) }.map_err(io::Error::from)?);
    let reaped = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(QUEUE);
    let exited = wait_for(child, reaped.clone());
    tokio::spawn(read_until_gone(master.clone(), tx, exited));
    Ok((
        Terminal {
            master,
            pid,
            reaped,
        },
        Output { rx },
    ))
}

/// A pty pair sized `cols` × `rows`: the master non-blocking and
/// close-on-exec, the slave for the child's standard streams.
fn open_pty(cols: u16, rows: u16) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the locals; the name
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
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned here only.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    }
    let flags = rustix::fs::fcntl_getfl(&master)?;
    rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok((master, slave))
}

/// The program's path, arguments and environment as the exec call takes
/// them, built before the fork (the child must not allocate).
struct Exec {
    path: CString,
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into the CStrings the struct owns, which
// are never changed after `new`.
unsafe impl Send for Exec {}
unsafe impl Sync for Exec {}

impl Exec {
    fn new(program: &Program) -> io::Result<Exec> {
        let c = |s: &[u8]| {
            CString::new(s).map_err(|_| {
                io::Error::other("a NUL byte in the program's arguments or environment")
            })
        };
        let path = c(program.path.as_os_str().as_bytes())?;
        let mut args = vec![path.clone()];
        for arg in &program.args {
            args.push(c(arg.as_bytes())?);
        }
        let env = program
            .env
            .iter()
            .map(|(k, v)| c(format!("{k}={v}").as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let pointers = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(Exec {
            argv: pointers(&args),
            envp: pointers(&env),
            path,
            _args: args,
            _env: env,
        })
    }

    /// Replaces the child with the program; returns only on failure.
    /// `execveat`, not `execve`: the seccomp filter refuses the latter.
    fn run(&self) -> io::Error {
        // SAFETY: path, argv and envp are NUL-terminated and outlive the
        // call (they are the parent's memory, copied by the fork).
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                libc::AT_FDCWD,
                self.path.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
                0,
            );
        }
        io::Error::last_os_error()
    }
}

/// Reaps the child on a blocking thread; its exit status (128 + signal for
/// one killed by a signal, as shells report it) once it is gone.
fn wait_for(
    mut child: std::process::Child,
    reaped: Arc<AtomicBool>,
) -> tokio::sync::oneshot::Receiver<u32> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::process::ExitStatusExt;
        let status = match child.wait() {
            Ok(s) => s
                .code()
                .map(|c| c as u32)
                .or_else(|| s.signal().map(|sig| 128 + sig as u32))
                .unwrap_or(255),
            Err(_) => 255,
        };
        reaped.store(true, Ordering::Release);
        let _ = tx.send(status);
    });
    rx
}

/// Reads the terminal until the program and everything it started closed
/// it (Linux then answers EIO), then reports the exit status, EOF and
/// close.
async fn read_until_gone(
    master: Arc<AsyncFd<OwnedFd>>,
    tx: mpsc::Sender<ChannelMsg>,
    exited: tokio::sync::oneshot::Receiver<u32>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let Ok(mut guard) = master.readable().await else {
            break;
        };
        match guard.try_io(|fd| rustix::io::read(fd.get_ref(), &mut buf).map_err(io::Error::from)) {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                if tx.send(ChannelMsg::Data { data }).await.is_err() {
                    return;
                }
            }
            Err(_would_block) => continue,
        }
    }
    let exit_status = exited.await.unwrap_or(255);
    for msg in [
        ChannelMsg::ExitStatus { exit_status },
        ChannelMsg::Eof,
        ChannelMsg::Close,
    ] {
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

impl Terminal {
    async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = data.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    fn kill(&self, signal: libc::c_int) {
        // The pid is the process group's (the child called setsid); once
        // reaped it may belong to someone else.
        if !self.reaped.load(Ordering::Acquire) {
            // SAFETY: kill takes plain integers.
            unsafe {
                libc::kill(-self.pid, signal);
            }
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.kill(libc::SIGKILL);
    }
}

impl super::TargetEnd for Terminal {
    async fn send(&self, data: Bytes) -> Result<(), ()> {
        self.write_all(&data).await.map_err(|_| ())
    }

    async fn resize(&self, cols: u32, rows: u32, _pix_width: u32, _pix_height: u32) {
        let size = libc::winsize {
            ws_row: rows.min(u16::MAX as u32) as u16,
            ws_col: cols.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
        unsafe {
            libc::ioctl(self.master.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }

    async fn signal(&self, signal: russh::Sig) {
        let number = match signal {
            russh::Sig::INT => libc::SIGINT,
            russh::Sig::TERM => libc::SIGTERM,
            russh::Sig::HUP => libc::SIGHUP,
            russh::Sig::KILL => libc::SIGKILL,
            russh::Sig::QUIT => libc::SIGQUIT,
            // The others (ABRT, ALRM, FPE, ILL, PIPE, SEGV, USR1, named
            // ones) mean nothing to an interactive client: not passed on.
            _ => return,
        };
        self.kill(number);
    }

    async fn eof(&self) {
        // A terminal has no EOF of its own: the line discipline's VEOF,
        // as a person would type it.
        let _ = self.write_all(b"\x04").await;
    }
}

mod seccomp {
    //! The one seccomp filter the sandbox uses: `execve` fails with EPERM,
    //! every other call is allowed. Built for the architectures rampart
    //! ships on; elsewhere a spawn that asks for it fails.

    use std::io;

    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const OFFSET_NR: u32 = 0;
    const OFFSET_ARCH: u32 = 4;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    /// x86_64's x32 calls carry this bit; they are refused as a whole.
    const X32_BIT: u32 = 0x4000_0000;

    pub struct Filter {
        program: Vec<libc::sock_filter>,
    }

    fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    impl Filter {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        pub fn no_execve() -> io::Result<Filter> {
            let deny = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
            Ok(Filter {
                program: vec![
                    op(LD_W_ABS, 0, 0, OFFSET_ARCH),
                    op(JEQ_K, 1, 0, ARCH),
                    op(RET_K, 0, 0, RET_KILL_PROCESS),
                    op(LD_W_ABS, 0, 0, OFFSET_NR),
                    op(JGE_K, 2, 0, X32_BIT),
                    op(JEQ_K, 1, 0, libc::SYS_execve as u32),
                    op(RET_K, 0, 0, RET_ALLOW),
                    op(RET_K, 0, 0, deny),
                ],
            })
        }

        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        pub fn no_execve() -> io::Result<Filter> {
            Err(io::Error::other(
                "the client sandbox's seccomp filter is not built for this architecture",
            ))
        }

        /// Installs the filter on the calling thread (the forked child).
        /// Needs no-new-privileges first.
        pub fn install(&self) -> io::Result<()> {
            let prog = libc::sock_fprog {
                len: self.program.len() as u16,
                filter: self.program.as_ptr().cast_mut(),
            };
            // SAFETY: prog points at the filter, which outlives the call;
            // the kernel copies it.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &prog as *const libc::sock_fprog,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::TargetEnd;

    /// Runs `script` with /bin/sh in the sandbox; what it printed, and its
    /// exit status.
    async fn run(script: &str, sandbox: Sandbox, input: &[u8]) -> (String, u32) {
        let program = Program {
            path: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            dir: "/".into(),
            cols: 100,
            rows: 30,
        };
        let (terminal, mut output) = spawn(&program, sandbox).expect("spawn");
        if !input.is_empty() {
            terminal.send(Bytes::copy_from_slice(input)).await.unwrap();
        }
        let mut text = Vec::new();
        let mut status = None;
        let read = async {
            while let Some(msg) = output.recv().await {
                match msg {
                    ChannelMsg::Data { data } => text.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), read)
            .await
            .expect("the program ended");
        (
            String::from_utf8_lossy(&text).into_owned(),
            status.expect("an exit status"),
        )
    }

    const OPEN: Sandbox = Sandbox {
        uid: None,
        own_network: false,
        no_exec: false,
    };

    #[tokio::test]
    async fn a_program_gets_a_terminal_of_the_given_size_and_its_exit_status() {
        let (text, status) = run(
            "read line; echo \"got $line\"; stty size; exit 7",
            OPEN,
            b"hello\r",
        )
        .await;
        assert!(text.contains("got hello"), "{text:?}");
        assert!(text.contains("30 100"), "{text:?}");
        assert_eq!(status, 7);
    }

    #[tokio::test]
    async fn the_sandbox_refuses_every_program_after_the_first() {
        let sandbox = Sandbox {
            no_exec: true,
            ..OPEN
        };
        let (text, _) = run(
            "echo started; /bin/true && echo ran-one || echo refused",
            sandbox,
            b"",
        )
        .await;
        assert!(text.contains("started"), "{text:?}");
        assert!(text.contains("refused"), "{text:?}");
        assert!(!text.contains("ran-one"), "{text:?}");
        // Without the filter the same script runs the program.
        let (text, _) = run("/bin/true && echo ran-one", OPEN, b"").await;
        assert!(text.contains("ran-one"), "{text:?}");
    }

    #[tokio::test]
    async fn the_sandbox_has_no_network_and_a_uid_of_its_own() {
        let root = rustix::process::geteuid().is_root();
        let sandbox = Sandbox {
            uid: root.then_some(2_100_000_123),
            own_network: true,
            no_exec: true,
        };
        // Shell builtins only: anything else would be an exec.
        let script = "while read a b; do echo \"if $a\"; done < /proc/net/dev; \
                      while read k v rest; do [ \"$k\" = Uid: ] && echo \"uid=$v\"; done < /proc/self/status";
        let (text, _) = run(script, sandbox, b"").await;
        let interfaces: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("if "))
            .filter(|name| name.ends_with(':'))
            .collect();
        assert_eq!(interfaces, ["lo:"], "{text:?}");
        if root {
            assert!(text.contains("uid=2100000123"), "{text:?}");
        }
    }
}
