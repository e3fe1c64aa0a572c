//! Background work: the delivery worker that drains the outbox, bringing
//! stories and quotes in, and the scheduler that fires periodic jobs.

pub mod alerts;
mod delivery_lease;
mod delivery_outcome;
pub mod digest;
mod edition_cache;
pub mod ingest;
mod list_protection;
pub mod render;
mod retry;
pub mod scheduler;
mod send_rate;
pub mod supervise;
mod suppression;
pub mod test_send;
pub mod worker;
