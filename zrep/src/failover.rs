//! `zrep failover SOURCE TARGET`: the target takes over from the source, with nothing
//! written on the source lost, and the way back stays incremental.
//!
//! 1. A replication while the source is still in use, so that the last step has
//!    little left to send.
//! 2. `readonly=on` on the source (each dataset of a `-r` tree): writes stop there.
//! 3. A last replication with a snapshot taken even if nothing was written since the
//!    previous one: the failover snapshot, which both sides then have as their newest.
//! 4. `readonly=off` on the target (each dataset): it is the new source.
//!
//! Failing back is the same command the other way round (`zrep failover TARGET SOURCE`,
//! or scheduled `zrep replicate TARGET SOURCE` runs in between): the old source has not
//! changed since the failover snapshot (it was read-only), so the reverse run sends an
//! incremental from that snapshot, without `--force` and without a full stream.
//!
//! Each step can be repeated: a failover that stopped part way is finished by running
//! it again.

use crate::error::{err, Error, Kind, Result};
use crate::replicate::{self, Options};
use crate::report::Outcome;
use crate::side::Side;
use crate::ui::Ui;

/// Runs the failover; returns the last replication's outcomes.
pub fn failover(
    opts: &Options,
    src: &mut Side,
    dst: &mut Side,
    more: &dyn Fn() -> Result<(Side, Side)>,
    ui: &Ui,
) -> Result<Vec<Outcome>> {
    let source = format!("{}{}", src.prefix(), opts.source);
    let target = format!("{}{}", dst.prefix(), opts.target);
    let failed = |outcomes: &[Outcome]| -> Option<Error> {
        let o = outcomes.iter().find(|o| o.error.is_some())?;
        Some(err(
            Kind::Other,
            format!("{}: {}", o.source, o.error.as_deref().unwrap_or("failed")),
        ))
    };
    let catch_up = replicate::replicate(opts, src, dst, more, ui)?;
    if let Some(e) = failed(&catch_up) {
        return Err(err(
            e.kind,
            format!("{}; nothing was changed for the failover", e.message),
        ));
    }
    ui.info(&format!("{source}: readonly=on (writes stop)"));
    src.set_readonly(&opts.source, opts.recursive, true)?;
    let last_opts = Options {
        allow_empty: true,
        writable: true,
        ..opts.clone()
    };
    let stuck = |e: Error| {
        err(
            e.kind,
            format!(
                "{}; {source} stays readonly=on: run the failover again once this is \
                 fixed, or set readonly=off on it to go back",
                e.message
            ),
        )
    };
    let last = replicate::replicate(&last_opts, src, dst, more, ui).map_err(stuck)?;
    if let Some(e) = failed(&last) {
        return Err(stuck(e));
    }
    dst.set_readonly(&opts.target, opts.recursive, false)
        .map_err(stuck)?;
    ui.info(&format!(
        "{target}: readonly=off; it is the source now (back: zrep failover{} {target} {source})",
        if opts.recursive { " -r" } else { "" }
    ));
    Ok(last)
}
