//! `rampart import assets|users FILE|-`: a CSV or XLSX file read in
//! (see `import`), its summary printed.

use anyhow::bail;

use super::ImportCmd;
use super::output;
use super::verb::{Io, Outcome};
use crate::audit::Via;
use crate::import;
use crate::ops::{self, Caller};
use crate::services::Services;

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: ImportCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    let local = caller.via == Via::Cli;
    let (args, what) = match &cmd {
        ImportCmd::Assets(args) => (args, "importing assets"),
        ImportCmd::Users(args) => (args, "importing users"),
    };
    let source = if args.is_stdin() {
        // The role first: over SSH only an admin's input is read
        // (see `ssh::admin`), so anyone else is refused here rather
        // than told their input is missing.
        ops::require_admin(caller, what)?;
        let bytes = io.stdin.all("import file")?;
        import::Source::from_bytes("stdin", bytes, args.format)
    } else {
        if !local {
            bail!(
                "import reads {} on the bastion: only in the local CLI; over SSH pipe the file in with `rampart import {} - < FILE`",
                args.file.display(),
                cmd.kind()
            );
        }
        import::Source::from_path(&args.file, args.format).map_err(ops::OpsError::from)?
    };
    let summary = match cmd {
        ImportCmd::Assets(_) => ops.import_assets(caller, &source).await?,
        ImportCmd::Users(_) => ops.import_users(caller, &source).await?,
    };
    if json {
        output::show(io.out, &summary, true)?;
    } else {
        writeln!(io.out, "{summary}")?;
    }
    Ok(Outcome::Success)
}
