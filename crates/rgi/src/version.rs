//! The version of the specification: [`SPEC_VERSION`].

use std::fmt;

/// A version of SPEC.md: `major.minor` (`CORE-VER-1`).
///
/// An application declares the version it implements by its dependency on this crate, for
/// example `rgi = "0.1"`, and may compare [`crate::ServerInfo::spec_version`] at startup
/// (`CORE-VER-4`). Types of this crate marked `#[non_exhaustive]` grow in later versions: match
/// them with a wildcard arm (`CORE-VER-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecVersion {
    /// Incremented when a requirement changes incompatibly.
    pub major: u16,
    /// Incremented when optional requirements, extensions or non-exhaustive members are added.
    pub minor: u16,
}

impl SpecVersion {
    /// Whether a party implementing `self` can work with a party implementing `other`
    /// (`CORE-VER-2`): the same major version, and while the major version is `0`, the same
    /// minor version.
    pub fn is_compatible_with(&self, other: &SpecVersion) -> bool {
        self.major == other.major && (self.major != 0 || self.minor == other.minor)
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version of SPEC.md this crate implements.
///
/// ```
/// assert_eq!(rgi::SPEC_VERSION.to_string(), "0.1");
/// ```
pub const SPEC_VERSION: SpecVersion = SpecVersion { major: 0, minor: 1 };
