//! The login-name and exec-command router: any login name and any command,
//! with and without a pty, as exec, shell and subsystem.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::route::{self, Request};

fuzz_target!(|data: &[u8]| {
    // login NUL command
    let text = String::from_utf8_lossy(data);
    let (login, command) = text.split_once('\0').unwrap_or((&text, ""));
    let _ = route::parse_target(command);
    let Ok(login) = route::parse_login(login) else {
        return;
    };
    for pty in [false, true] {
        let _ = route::route(
            &login,
            &Request::Exec {
                command: command.to_string(),
                pty,
            },
        );
        let _ = route::route(&login, &Request::Shell { pty });
    }
    let _ = route::route(&login, &Request::Subsystem(command.to_string()));
});
