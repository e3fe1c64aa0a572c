//! Background work: the delivery worker that drains the outbox, and the
//! scheduler that fires periodic jobs.

pub mod scheduler;
pub mod worker;
