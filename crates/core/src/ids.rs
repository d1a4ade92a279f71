//! Typed ids of the archive's records, so that an account's id is never passed where a
//! member's is meant, nor an organization's row id where a count is. The values are opaque
//! (random hex for accounts and members, the index's row id for organizations) and never
//! personal data.

use serde::{Deserialize, Serialize};

/// With the `sqlx` feature, an id binds and decodes as the value it wraps, on every backend
/// (what sqlx's `#[sqlx(transparent)]` derive writes; its proc-macro crate is not built).
macro_rules! bound_as_its_value {
    ($name:ident, $inner:ty) => {
        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            $inner: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$inner as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$inner as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            $inner: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <$inner as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0, buf)
            }

            fn size_hint(&self) -> usize {
                <$inner as sqlx::Encode<'q, DB>>::size_hint(&self.0)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            $inner: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                <$inner as sqlx::Decode<'r, DB>>::decode(value).map($name)
            }
        }
    };
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        bound_as_its_value!($name, String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

text_id!(
    /// A patient account (one per phone number).
    AccountId
);
text_id!(
    /// A person on an account: the holder or a family member.
    MemberId
);

/// An organization (a hospital), by its row in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub i64);

bound_as_its_value!(OrgId, i64);

/// A study, by its row in the index (never shown outside: the portal names exams by their
/// exam id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StudyPk(pub i64);

bound_as_its_value!(StudyPk, i64);

impl std::fmt::Display for StudyPk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for OrgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_print_as_their_value() {
        let account = AccountId::new("a1b2");
        assert_eq!(account.as_str(), "a1b2");
        assert_eq!(account.to_string(), "a1b2");
        assert_eq!(serde_json::to_string(&MemberId::new("m9")).unwrap(), "\"m9\"");
        assert_eq!(serde_json::to_string(&OrgId(7)).unwrap(), "7");
        assert_eq!(String::from(account), "a1b2");
    }
}
