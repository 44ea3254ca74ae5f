//! Stable codes: enums whose every variant has one fixed string that clients branch on or that is stored.
//!
//! [`stable_codes!`] declares such an enum from one table of `Variant = "STRING"` lines, so adding a code is one
//! line: the string, `FromStr` and the list of all variants cannot drift apart. Two variants with the same string
//! are refused at compile time (the second `FromStr` arm would be unreachable, which the workspace lints deny).

/// A string that is not one of an enum's stable codes. Names the enum, never the value (it may be caller input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a known {kind}")]
pub struct UnknownCode {
    /// The enum that was asked, e.g. `AuditAction`.
    pub kind: &'static str,
}

/// Declares a `Copy` enum with `ALL`, `as_str`, `FromStr` and `Display` from a table of `Variant = "STRING"` lines.
/// Doc comments and attributes on the enum and on each variant are kept.
macro_rules! stable_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$( Self::$variant, )+];

            /// The stable string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $code, )+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::codes::UnknownCode;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                match raw {
                    $( $code => Ok(Self::$variant), )+
                    _ => Err($crate::codes::UnknownCode { kind: stringify!($name) }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use stable_codes;
