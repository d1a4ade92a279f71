//! Transfer syntaxes, through dicom-rs's registry.

use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

pub type TransferSyntax = dicom_encoding::TransferSyntax;

pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";

/// A transfer syntax whose data sets we can parse; `None` for unknown UIDs and for those the
/// registry knows only by name.
pub fn lookup(uid: &str) -> Option<&'static TransferSyntax> {
    let ts = TransferSyntaxRegistry.get(uid.trim_end_matches(['\0', ' ']))?;
    (!ts.is_unsupported()).then_some(ts)
}

/// Whether the whole data set is compressed (deflate), so that byte offsets mean nothing.
pub fn is_dataset_codec(ts: &TransferSyntax) -> bool {
    matches!(ts.codec(), Codec::Dataset(_))
}

/// Whether frames in this transfer syntax can be decoded to pixels here.
pub fn can_decode_pixels(uid: &str) -> bool {
    lookup(uid).is_some_and(|ts| ts.can_decode_all())
}

/// The name of a transfer syntax, for messages.
pub fn name(uid: &str) -> &'static str {
    TransferSyntaxRegistry.get(uid).map(|ts| ts.name()).unwrap_or("unknown transfer syntax")
}
