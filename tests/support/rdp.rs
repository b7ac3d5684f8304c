//! Real RDP peers for the interop tests, from Debian's packages: Xvfb
//! displays, FreeRDP's shadow server sharing one as an NLA-only target
//! (users and passwords in a SAM file), and `xfreerdp` on a display of its
//! own, whose screen is read back with ImageMagick's `import`. A missing
//! program skips the test, or fails it under RAMPART_REQUIRE_INTEROP=1, as
//! in [`super::peers`]. Every process is stopped on drop; every file lives
//! in a temp dir.

#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread::{JoinHandle, sleep};
use std::time::{Duration, Instant};

use super::peers::{find, peers};

/// The target's background, as `xsetroot` takes it.
pub const TARGET_BACKGROUND: &str = "#3366cc";
/// The same colour as RGB.
pub const TARGET_RGB: [u8; 3] = [0x33, 0x66, 0xcc];
/// The target's screen size.
pub const TARGET_SIZE: (u32, u32) = (800, 600);

/// How long a peer may take to start, or a helper program to run.
const START: Duration = Duration::from_secs(20);
/// How often [`Client::wait_for_color`] looks at the screen.
const POLL: Duration = Duration::from_millis(200);
/// How far from the asked colour [`Client::wait_for_color`] still counts a
/// pixel: lossy paths (16-bit colour, H.264, which shows #3366cc as
/// #3166c8) move each channel by up to 4.
const WAIT_TOLERANCE: u8 = 8;

/// Whether every RDP peer is installed; if not, the reason is printed and
/// the test should return (it fails instead under RAMPART_REQUIRE_INTEROP=1).
pub fn peers_present() -> bool {
    peers([
        "Xvfb",
        "xsetroot",
        "import",
        "winpr-hash",
        "freerdp-shadow-cli",
        "xfreerdp",
    ])
    .is_some()
}

fn program(name: &str) -> PathBuf {
    find(name).unwrap_or_else(|| panic!("{name} is not installed (see rdp::peers_present)"))
}

/// A loopback port nothing listens on (for now).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Stops a child: SIGTERM (Xvfb then removes its lock file and socket),
/// SIGKILL when it is still there after 3 s.
fn stop(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    // SAFETY: kill(2) on a child not yet waited for, so its pid is not reused.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads a pipe to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Runs a short helper program and returns its stdout; fails the test if
/// it fails or has not finished within [`START`] (it is killed then).
fn run(cmd: &mut Command) -> Vec<u8> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > START {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {START:?}");
        }
        sleep(Duration::from_millis(10));
    };
    let out = out.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    assert!(status.success(), "{shown} failed ({status}): {err}");
    out
}

/// A binary PPM (`P6`, maxval 255) as (width, height, RGB bytes).
fn parse_ppm(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    // Four fields, each after whitespace or a `#` comment, then one
    // whitespace byte and the samples.
    let mut at = 0;
    let mut fields = Vec::new();
    while fields.len() < 4 {
        while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b'#') {
            if bytes[at] == b'#' {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            } else {
                at += 1;
            }
        }
        let start = at;
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
    }
    assert!(
        fields[0] == "P6" && fields[3] == "255",
        "not an 8-bit PPM: {fields:?}"
    );
    let width: usize = fields[1].parse().expect("PPM width");
    let height: usize = fields[2].parse().expect("PPM height");
    let data = bytes
        .get(at + 1..at + 1 + width * height * 3)
        .expect("a whole PPM picture");
    (width, height, data.to_vec())
}

/// How many pixels of `rgb` bytes are within `tolerance` of `colour` in
/// every channel.
pub fn count_in(rgb: &[u8], colour: [u8; 3], tolerance: u8) -> usize {
    rgb.chunks_exact(3)
        .filter(|p| {
            p.iter()
                .zip(colour)
                .all(|(a, b)| a.abs_diff(b) <= tolerance)
        })
        .count()
}

// ------------------------------------------------------------- Xvfb --

/// An Xvfb X server on a display number of its own, stopped on drop.
pub struct Display {
    child: Child,
    number: u32,
    dir: tempfile::TempDir,
}

impl Display {
    /// A `width`x`height` 24-bit screen, its root window `background` (an X
    /// colour such as `#3366cc`), black when `None`.
    pub fn start(width: u32, height: u32, background: Option<&str>) -> Display {
        let dir = tempfile::tempdir().expect("temp dir");
        let number_file = dir.path().join("display");
        let log = dir.path().join("xvfb.log");
        // -displayfd 1: Xvfb takes a free number and writes it to its stdout
        // once it accepts clients. -noreset: the root keeps its colour when
        // xsetroot, the last client, disconnects.
        let child = Command::new(program("Xvfb"))
            .args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .args(["-nolisten", "tcp", "-noreset", "-br"])
            .stdin(Stdio::null())
            .stdout(File::create(&number_file).expect("display file"))
            .stderr(File::create(&log).expect("Xvfb log"))
            .spawn()
            .expect("start Xvfb");
        let mut display = Display {
            child,
            number: 0,
            dir,
        };
        let started = Instant::now();
        display.number = loop {
            let text = read_lossy(&number_file);
            if let Some((number, _)) = text.split_once('\n') {
                break number.trim().parse().expect("a display number");
            }
            if let Ok(Some(status)) = display.child.try_wait() {
                panic!("Xvfb exited ({status}): {}", read_lossy(&log));
            }
            assert!(
                started.elapsed() < START,
                "Xvfb did not start within {START:?}: {}",
                read_lossy(&log)
            );
            sleep(Duration::from_millis(20));
        };
        if let Some(colour) = background {
            run(Command::new(program("xsetroot"))
                .env("DISPLAY", display.name())
                .args(["-solid", colour]));
        }
        display
    }

    /// `:N`, for `DISPLAY`.
    pub fn name(&self) -> String {
        format!(":{}", self.number)
    }

    /// The whole screen as (width, height, RGB bytes row by row).
    pub fn screenshot_rgb(&self) -> (usize, usize, Vec<u8>) {
        let ppm = run(Command::new(program("import"))
            .env("DISPLAY", self.name())
            .env("MAGICK_TEMPORARY_PATH", self.dir.path())
            .args(["-window", "root", "-depth", "8", "ppm:-"]));
        parse_ppm(&ppm)
    }

    /// How many pixels of a fresh screenshot are within `tolerance` of
    /// `rgb` in every channel.
    pub fn count_color(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        count_in(&self.screenshot_rgb().2, rgb, tolerance)
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

// ---------------------------------------------------- shadow server --

/// FreeRDP's shadow server on a loopback port, sharing an 800x600 display
/// of [`TARGET_BACKGROUND`], NLA only, for the users of its SAM file;
/// stopped on drop.
pub struct ShadowTarget {
    pub port: u16,
    child: Child,
    display: Display,
    sam: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl ShadowTarget {
    /// Listening, with one user: `user` with `password`.
    pub fn start(user: &str, password: &str) -> ShadowTarget {
        let (width, height) = TARGET_SIZE;
        let display = Display::start(width, height, Some(TARGET_BACKGROUND));
        let dir = tempfile::tempdir().expect("temp dir");
        let sam = dir.path().join("sam");
        std::fs::write(&sam, sam_line(user, password)).expect("write SAM file");
        let log = dir.path().join("shadow.log");
        let out = File::create(&log).expect("shadow log");
        let port = free_port();
        // HOME and XDG_CONFIG_HOME: its certificate and key are made under
        // $XDG_CONFIG_HOME/freerdp/shadow.
        let child = Command::new(program("freerdp-shadow-cli"))
            .arg(format!("/port:{port}"))
            .arg("/bind-address:127.0.0.1")
            .arg("/sec:nla")
            .arg(format!("/sam-file:{}", sam.display()))
            .env("DISPLAY", display.name())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start freerdp-shadow-cli");
        let mut target = ShadowTarget {
            port,
            child,
            display,
            sam,
            log,
            dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = target.child.try_wait() {
                panic!("freerdp-shadow-cli exited ({status}): {}", target.log());
            }
            assert!(
                started.elapsed() < START,
                "freerdp-shadow-cli did not listen on {port} within {START:?}: {}",
                target.log()
            );
            sleep(Duration::from_millis(50));
        }
        target
    }

    /// Sets `user`'s password (adding the user if new; other users keep
    /// theirs). The server reads the SAM file at every login.
    pub fn set_password(&self, user: &str, password: &str) {
        let line = sam_line(user, password);
        let prefix = format!("{user}:");
        let mut text: String = read_lossy(&self.sam)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(&prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&line);
        // Written beside, then renamed: a login never reads half a file.
        let next = self.dir.path().join("sam.next");
        std::fs::write(&next, text).expect("write SAM file");
        std::fs::rename(&next, &self.sam).expect("replace SAM file");
    }

    /// The display it shares.
    pub fn display(&self) -> &Display {
        &self.display
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// Stops the server now (its clients are cut off); its display stays.
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }
}

impl Drop for ShadowTarget {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `user`'s line for a SAM file, `user:::<NT hash>:::\n`, by winpr-hash.
fn sam_line(user: &str, password: &str) -> String {
    let out =
        run(Command::new(program("winpr-hash")).args(["-u", user, "-p", password, "-f", "sam"]));
    let line = String::from_utf8_lossy(&out).trim().to_string();
    assert!(
        line.starts_with(&format!("{user}:::")),
        "unexpected winpr-hash output: {line:?}"
    );
    format!("{line}\n")
}

// ---------------------------------------------------------- xfreerdp --

/// `xfreerdp` on a 1024x768 display of its own (room for the target's
/// 800x600 desktop), what it prints kept in a file; stopped on drop.
pub struct Client {
    child: Mutex<Child>,
    display: Display,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Client {
    /// Connects to `host_port` as `user` with `password`: NLA, any
    /// certificate, no graphics pipeline (`-gfx`: plain bitmap updates with
    /// exact colours, where the default H.264 is lossy). `extra` options
    /// come last, so they win over these.
    pub fn connect(host_port: &str, user: &str, password: &str, extra: &[&str]) -> Client {
        let display = Display::start(1024, 768, None);
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("xfreerdp.log");
        let out = File::create(&log).expect("xfreerdp log");
        // HOME and XDG_CONFIG_HOME: it keeps certificates under
        // $XDG_CONFIG_HOME/freerdp.
        let child = Command::new(program("xfreerdp"))
            .arg(format!("/v:{host_port}"))
            .arg(format!("/u:{user}"))
            .arg(format!("/p:{password}"))
            .args(["/cert:ignore", "-gfx", "/sec:nla"])
            .args(extra)
            .env("DISPLAY", display.name())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start xfreerdp");
        Client {
            child: Mutex::new(child),
            display,
            log,
            dir,
        }
    }

    /// Its exit code once it has exited, waiting up to `timeout`; `None`
    /// if it still runs then. Killed by a signal: 128 + the signal.
    pub fn wait_exit(&self, timeout: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            let status = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait()
                .expect("wait xfreerdp");
            if let Some(status) = status {
                return Some(
                    status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
                );
            }
            if started.elapsed() >= timeout {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&self) -> bool {
        self.wait_exit(Duration::ZERO).is_none()
    }

    /// Its display.
    pub fn display(&self) -> &Display {
        &self.display
    }

    /// Its whole screen as (width, height, RGB bytes row by row).
    pub fn screenshot_rgb(&self) -> (usize, usize, Vec<u8>) {
        self.display.screenshot_rgb()
    }

    /// How many pixels of a fresh screenshot are within `tolerance` of
    /// `rgb` in every channel.
    pub fn count_color(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        self.display.count_color(rgb, tolerance)
    }

    /// Whether at least `min_pixels` pixels come to be `rgb` (give or take
    /// [`WAIT_TOLERANCE`]) within `timeout`, looking every 200 ms; false
    /// as soon as xfreerdp has exited without showing them.
    pub fn wait_for_color(&self, rgb: [u8; 3], min_pixels: usize, timeout: Duration) -> bool {
        let started = Instant::now();
        loop {
            let running = self.is_running();
            if self.count_color(rgb, WAIT_TOLERANCE) >= min_pixels {
                return true;
            }
            if !running || started.elapsed() >= timeout {
                return false;
            }
            sleep(POLL);
        }
    }

    /// What xfreerdp printed so far (stdout and stderr), for failure
    /// messages.
    pub fn output(&self) -> String {
        read_lossy(&self.log)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        stop(self.child.get_mut().unwrap_or_else(PoisonError::into_inner));
    }
}
