//! The patient API, driven in-process through the real router, archive, SQLite index and SMS
//! file provider, with a manual clock so that every time limit is tested at its boundary.

mod common;

mod access;
mod auth;
mod consent;
mod downloads;
mod exams;
mod holding;
mod matching;
mod members;
mod rights;
mod shares;
