//! Domain types and rules of cloudfilm. Nothing here does I/O: every rule can be tested alone.

pub mod ae;
pub mod clock;
pub mod connections;
pub mod consent;
pub mod download;
pub mod forwarded;
pub mod ids;
pub mod instance;
pub mod masking;
pub mod matching;
pub mod member;
pub mod org;
pub mod otp;
pub mod phone;
pub mod query;
pub mod refusals;
pub mod resident_id;
pub mod rights;
pub mod session;
pub mod share;
pub mod stow_content_type;
pub mod uid;

pub use ae::AeTitle;
pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{AccountId, MemberId, OrgId, StudyPk};
pub use org::{OrgCode, OrgSwitches};
pub use phone::PhoneNumber;
pub use resident_id::ResidentId;
pub use uid::Uid;
