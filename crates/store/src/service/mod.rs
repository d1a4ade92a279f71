//! The service layer of the index: the rules of every write, backend-neutral. Each function
//! runs inside one transaction given as `&mut dyn Tx`, decides with the rules of `core`, and
//! answers with the audit entries the backend commits in that same transaction (S26).

pub mod archive;
pub mod patients;
pub mod sharing;
