//! The text names of the closed enums that travel as words (finding codes, verdicts, statuses,
//! formats, render modes). One derive — strum's `IntoStaticStr` with `VariantArray` — is each
//! enum's table; this module reads it back, so parsing and listing never repeat the names.

/// The variant named `name` (surrounding space and ASCII case ignored).
pub fn by_name<T>(name: &str) -> Option<T>
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    let name = name.trim();
    T::VARIANTS
        .iter()
        .copied()
        .find(|v| Into::<&'static str>::into(*v).eq_ignore_ascii_case(name))
}

/// Every variant's name, in declaration order, joined by `", "` (for error messages).
pub fn listed<T>() -> String
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    T::VARIANTS
        .iter()
        .map(|v| Into::<&'static str>::into(*v))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crawl::config::RenderMode;
    use crate::observation::{FetchErrorKind, RenderStatus};
    use crate::registry::model::{IpBlockStatus, Status};
    use crate::verdict::policy::{RequiredNumber, Severity};
    use crate::verdict::{CertStatus, FindingCode, UnknownReason};
    use serde::Serialize;

    /// The name a variant is written with in JSON (serde) and its name as text (strum) agree.
    fn same_as_serde<T>()
    where
        T: strum::VariantArray + Copy + Into<&'static str> + Serialize + std::fmt::Debug,
    {
        for v in T::VARIANTS {
            let text: &'static str = (*v).into();
            let json = serde_json::to_value(v).ok();
            assert_eq!(json, Some(serde_json::Value::from(text)), "{v:?}");
            assert_eq!(
                by_name::<T>(&format!(" {} ", text.to_uppercase())).map(|x| x.into()),
                Some(text)
            );
        }
    }

    #[test]
    fn text_names_are_the_serialised_names() {
        same_as_serde::<FindingCode>();
        same_as_serde::<UnknownReason>();
        same_as_serde::<CertStatus>();
        same_as_serde::<Severity>();
        same_as_serde::<RequiredNumber>();
        same_as_serde::<Status>();
        same_as_serde::<IpBlockStatus>();
        same_as_serde::<FetchErrorKind>();
        same_as_serde::<RenderStatus>();
        same_as_serde::<RenderMode>();
        same_as_serde::<crate::extract::Via>();
        same_as_serde::<crate::api::announcements::AnnouncementCategory>();
        assert_eq!(by_name::<FindingCode>("no_such_code"), None);
        // Enums without a serde form keep their own spellings.
        use crate::tabular::UploadFormat;
        let formats: Vec<&str> = UploadFormat::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(formats, ["xlsx", "xls", "jsonl", "csv"]);
        use crate::number::LicenceClass;
        assert_eq!(LicenceClass::B1B2.as_str(), "B1.B2");
        assert_eq!(LicenceClass::B2.as_str(), "B2");
        assert!(listed::<RenderMode>().contains("off, auto"));
    }
}
