//! DICOM for cloudfilm, on dicom-rs: inspecting incoming Part-10 instances for the index,
//! the query model of QIDO-RS / C-FIND, DICOM JSON, frame extraction and rendering.
//! Everything of dicom-rs the project uses goes through this crate.

pub mod codestream;
pub mod deid;
pub mod dicomdir;
pub mod dimse;
pub mod inspect;
pub mod json;
pub mod query;
pub mod render;
pub mod report;
pub mod synth;
pub mod transcode;
pub mod transfer;

pub use cloudfilm_core::instance::{InstanceInfo, PixelLayout};
pub use inspect::{InspectError, inspect, inspect_with};
