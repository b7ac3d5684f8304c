//! A desktop recording as an MP4 video (`rampart export --format mp4`),
//! encoded by `ffmpeg` (H.264) when it is installed on the bastion; when
//! it is not, the error says so and points at `--format gif`, which needs
//! nothing. The pictures [`super::desktop`] decodes are written to
//! ffmpeg's standard input as raw RGB at a constant [`VideoOptions::fps`],
//! the picture on screen at each frame's moment, pauses shortened to the
//! idle cap as the replay does; ffmpeg writes a temporary file (an MP4
//! needs a seekable output), which is then handed out and removed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::RecordError;
use super::desktop::{Desktop, Frame, scaled_pixel};

/// How the video is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoOptions {
    /// Frames a second (constant).
    pub fps: f64,
    /// Pauses longer than this (seconds) are shortened to it.
    pub idle_cap: f64,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            fps: 5.0,
            idle_cap: 2.0,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoReport {
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub seconds: f64,
}

/// `program` in the directories of `path` (a `PATH` value).
pub(crate) fn find_program(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn video_error(text: impl Into<String>) -> RecordError {
    RecordError::Video(text.into())
}

/// The ffmpeg encoding the frames, and where it writes.
struct Encoder {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    errors: std::thread::JoinHandle<Vec<u8>>,
    file: PathBuf,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    frames: u64,
}

impl Encoder {
    fn start(ffmpeg: &Path, width: u32, height: u32, fps: f64) -> Result<Encoder, RecordError> {
        let file = std::env::temp_dir().join(format!(
            "rampart-export-{}-{}.mp4",
            std::process::id(),
            crate::model::new_id()
        ));
        let mut child = Command::new(ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
            .args(["-s", &format!("{width}x{height}")])
            .args(["-r", &format!("{fps}"), "-i", "pipe:0"])
            // H.264 in 4:2:0 wants even sides.
            .args(["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"])
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            ])
            .args(["-movflags", "+faststart", "-f", "mp4", "-y"])
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| video_error(format!("cannot start {}: {e}", ffmpeg.display())))?;
        let (Some(stdin), Some(mut stderr)) = (child.stdin.take(), child.stderr.take()) else {
            return Err(video_error("ffmpeg started without its pipes"));
        };
        // Read on its own so a chatty ffmpeg never blocks on a full pipe.
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        Ok(Encoder {
            child,
            stdin,
            errors,
            file,
            width,
            height,
            rgb: Vec::new(),
            frames: 0,
        })
    }

    /// Writes `frame` as the next video frame, scaled to the video's size
    /// if the desktop was resized.
    fn frame(&mut self, frame: &Frame<'_>) -> Result<(), RecordError> {
        self.rgb.clear();
        if (frame.width, frame.height) == (self.width, self.height) {
            self.rgb
                .extend(frame.rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
        } else {
            let (w, h) = (self.width as usize, self.height as usize);
            for y in 0..h {
                for x in 0..w {
                    self.rgb.extend(scaled_pixel(frame, (w, h), (x, y)));
                }
            }
        }
        self.stdin
            .write_all(&self.rgb)
            .map_err(|e| video_error(format!("ffmpeg stopped reading frames: {e}")))?;
        self.frames += 1;
        Ok(())
    }

    /// Ends the input, waits for ffmpeg and copies the video to `out`.
    fn finish(self, out: &mut impl Write) -> Result<u64, RecordError> {
        let Encoder {
            mut child,
            stdin,
            errors,
            file,
            frames,
            ..
        } = self;
        drop(stdin);
        let status = child.wait();
        let errors = errors.join().unwrap_or_default();
        let result = match status {
            Ok(s) if s.success() => std::fs::File::open(&file)
                .and_then(|mut f| std::io::copy(&mut f, out))
                .map(|_| frames)
                .map_err(RecordError::Output),
            Ok(s) => {
                let said = String::from_utf8_lossy(&errors);
                let last = said.lines().last().unwrap_or("no message").trim();
                Err(video_error(format!("ffmpeg failed ({s}): {last}")))
            }
            Err(e) => Err(video_error(format!("ffmpeg: {e}"))),
        };
        let _ = std::fs::remove_file(&file);
        result
    }
}

/// Writes the desktop recording `cast` to `out` as an MP4 video.
pub fn write_mp4(
    cast: impl AsRef<Path>,
    out: &mut impl Write,
    options: VideoOptions,
) -> Result<VideoReport, RecordError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    encode(cast.as_ref(), out, options, find_program("ffmpeg", &path))
}

/// [`write_mp4`] with the ffmpeg found (`None`: not installed).
fn encode(
    cast: &Path,
    out: &mut impl Write,
    options: VideoOptions,
    ffmpeg: Option<PathBuf>,
) -> Result<VideoReport, RecordError> {
    let Some(ffmpeg) = ffmpeg else {
        return Err(video_error(
            "--format mp4 needs ffmpeg on the bastion (Debian: apt install ffmpeg); --format gif needs nothing",
        ));
    };
    let fps = options.fps.clamp(1.0, 60.0);
    let cap = if options.idle_cap > 0.0 {
        options.idle_cap
    } else {
        f64::INFINITY
    };
    let mut desktop = Desktop::new();
    let mut encoder: Option<Encoder> = None;
    // The animation clock (pauses capped) and the next frame's moment.
    let (mut clock, mut previous, mut next_frame) = (0.0f64, 0.0f64, 0.0f64);
    for chunk in super::export::chunks(cast)? {
        let (time, bytes) = chunk?;
        let gap = (time - previous).max(0.0);
        previous = previous.max(time);
        let next = clock + gap.min(cap);
        // Frames up to this chunk show the picture drawn before it.
        while next_frame < next {
            if let Some(frame) = desktop.frame() {
                let encoder = match encoder.as_mut() {
                    Some(e) => e,
                    None => {
                        encoder.insert(Encoder::start(&ffmpeg, frame.width, frame.height, fps)?)
                    }
                };
                encoder.frame(&frame)?;
            }
            next_frame += 1.0 / fps;
        }
        clock = next;
        desktop.feed(&bytes);
    }
    // The last picture, for one frame.
    if let Some(frame) = desktop.frame() {
        let encoder = match encoder.as_mut() {
            Some(e) => e,
            None => encoder.insert(Encoder::start(&ffmpeg, frame.width, frame.height, fps)?),
        };
        encoder.frame(&frame)?;
    }
    let Some(encoder) = encoder else {
        return Err(video_error(
            "the recording has no picture (the desktop was never shown)",
        ));
    };
    let (width, height) = (encoder.width, encoder.height);
    let frames = encoder.finish(out)?;
    Ok(VideoReport {
        frames,
        width,
        height,
        seconds: frames as f64 / fps,
    })
}

#[cfg(test)]
mod tests {
    use super::{VideoOptions, encode, find_program};

    #[test]
    fn programs_are_found_on_the_path_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ffmpeg"), b"").expect("write");
        let path =
            std::env::join_paths([std::path::Path::new("/nonexistent"), dir.path()]).expect("join");
        assert_eq!(
            find_program("ffmpeg", &path),
            Some(dir.path().join("ffmpeg"))
        );
        assert_eq!(find_program("ffprobe", &path), None);
    }

    #[test]
    fn without_ffmpeg_the_error_says_what_to_install_and_what_works_instead() {
        let cast = std::path::Path::new("/nonexistent.cast");
        let e =
            encode(cast, &mut Vec::new(), VideoOptions::default(), None).expect_err("no ffmpeg");
        let text = e.to_string();
        assert!(
            text.contains("apt install ffmpeg") && text.contains("--format gif"),
            "{text}"
        );
    }
}
