//! The cloudfilm server: the archive service (ingest and retrieval shared by every interface),
//! the HTTP application (DICOMweb now; the patient API later) and its configuration.

pub mod app;
pub mod archive;
pub mod auth;
mod body_pace;
pub mod config;
pub mod connections;
pub mod cors;
pub mod dicomweb;
pub mod dimse;
pub mod error;
mod health;
pub mod http_server;
pub mod ingest;
pub mod metrics;
pub mod ohif;
pub mod openapi;
pub mod patients;
pub mod portal;
mod read_ahead;
pub mod refusals;
pub mod retrieve;
pub mod shared;
pub mod sms;
pub mod tls;

pub use archive::Archive;
pub use config::Config;
