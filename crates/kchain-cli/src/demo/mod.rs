//! `kchain demo`: a newcomer's tour. Writes a realistic stream of supply-chain events to a
//! chained topic, verifies it, then plays an attacker with write access to the log on copies
//! of it and shows each change caught at its offset (`stream`, `attacks`); then the ledger
//! (`ledger`) and three organisations sharing a topic through signed checkpoints and
//! witnesses (`orgs`), and the same over HTTPS as separate processes of this binary
//! (`hosts`). Every part but `hosts` uses only the library API, so it runs on either backend;
//! tests run the parts directly.

mod attacks;
mod events;
mod hosts;
mod ledger;
mod orgs;
mod stream;

pub use events::{open_scratch, TOPIC};
pub use hosts::tour as hosts_tour;
pub use ledger::tour as ledger_tour;
pub use orgs::tour as orgs_tour;
pub use stream::tour;
