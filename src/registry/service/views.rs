//! Read views of the registry: one filing with its subject ([`FilingView`]), the public list
//! of filings revoked for false information, a host's certificate, and the certificate
//! lookup the verifier reads.

use super::*;

/// One filing as shown to users (`filing show --format json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilingView {
    pub id: FilingId,
    pub subject_number: Option<String>,
    pub service_number: Option<String>,
    pub status: String,
    pub subject_name: String,
    pub subject_id_number: String,
    pub subject_nature: String,
    pub province: String,
    pub name: String,
    pub homepage: String,
    pub domains: Vec<String>,
    pub ips: Vec<String>,
    pub providers: Vec<ProviderAccess>,
    pub access_method: String,
    pub categories: Vec<CategoryEntry>,
    pub operating: bool,
    pub operating_licence: Option<String>,
    pub cert_serial: Option<u64>,
    pub cert_key_id: Option<String>,
    pub approved_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub empty_shell: bool,
    pub pending_change: Option<Vec<String>>,
    pub cancellation: Option<CancellationRequest>,
    pub rejection: Option<String>,
    pub owner: String,
    pub history: Vec<HistoryEntry>,
    /// A pending annual-review (renewal) request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<crate::registry::model::RenewalRequest>,
    /// `website`, `app` or `mini_program`.
    #[serde(default = "website_kind")]
    pub kind: String,
    /// An APP's package name or a mini-program's app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

fn website_kind() -> String {
    "website".into()
}

impl FilingView {
    /// The view at `now`: an active filing past its annual review shows
    /// `annual_review_overdue`.
    pub fn at(f: &Filing, s: &Subject, now: i64) -> Self {
        let mut v = FilingView::new(f, s);
        v.status = f.status_label_at(now).to_string();
        v
    }

    pub fn new(f: &Filing, s: &Subject) -> Self {
        FilingView {
            id: f.id,
            subject_number: f.number.as_ref().map(|n| n.subject_number().to_string()),
            service_number: f.number.as_ref().map(|n| n.to_string()),
            status: f.status_label().to_string(),
            subject_name: s.name.clone(),
            subject_id_number: s.id_number.clone(),
            subject_nature: s.nature.clone(),
            province: s.province.to_string(),
            kind: match f.kind {
                crate::number::ServiceKind::Website => "website",
                crate::number::ServiceKind::App => "app",
                crate::number::ServiceKind::MiniProgram => "mini_program",
            }
            .into(),
            app_id: f.app_id.clone(),
            name: f.name.clone(),
            homepage: f.homepage.clone(),
            domains: f.domains.iter().map(|d| d.to_string()).collect(),
            ips: f.ips.iter().map(|i| i.to_string()).collect(),
            providers: f.providers.clone(),
            access_method: f.access_method.clone(),
            categories: f.categories.clone(),
            operating: f.operating(),
            operating_licence: f.operating_licence.as_ref().map(|l| l.to_string()),
            cert_serial: (f.cert_serial > 0).then_some(f.cert_serial),
            cert_key_id: f.certificate.as_ref().map(|c| c.key_id.clone()),
            approved_at: f.approved_at,
            expires_at: f.expires_at,
            empty_shell: f.is_empty_shell(),
            pending_change: f
                .pending_change
                .as_ref()
                .map(|c| c.domains.iter().map(|d| d.to_string()).collect()),
            cancellation: f.cancellation.clone(),
            rejection: f.rejection.clone(),
            owner: s.owner.clone(),
            renewal: f.renewal.clone(),
            history: f.history.clone(),
        }
    }
}

/// [`FilingLookup`] straight from the store.
pub struct StoreLookup<'a, S>(&'a S);

impl<S: RegistryRead> FilingLookup for StoreLookup<'_, S> {
    fn filing_facts(&self, service_number: &FilingNumber) -> Option<FilingFacts> {
        let id = self.0.filing_by_number(service_number).ok()??;
        let f = self.0.filing(id).ok()??;
        let state: FilingState = f.cert_state()?;
        Some(FilingFacts {
            state,
            current_serial: (f.cert_serial > 0).then_some(f.cert_serial)?,
            expires_at: f.expires_at?,
        })
    }
}

impl<S: RegistryStore> Registry<S> {
    /// The public list of filings revoked for false information, newest first.
    pub fn false_information_list(&self) -> Result<Vec<PublishedRevocation>, RegistryError> {
        let mut found = Vec::new();
        self.store.scan_filings(&mut |f| {
            if f.status == Status::Revoked && f.false_information.is_some() {
                found.push(f);
            }
            true
        })?;
        let mut out = Vec::new();
        for f in found {
            let s = subject_of(&self.store, &f)?;
            out.push(PublishedRevocation {
                service_number: f.number.as_ref().map(|n| n.to_string()),
                subject_name: s.name,
                province: s.province.to_string(),
                website_name: f.name,
                domains: f.domains.iter().map(|d| d.to_string()).collect(),
                revoked_at: f.false_information.unwrap_or_default(),
            });
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.revoked_at));
        Ok(out)
    }

    /// A filing and its subject.
    pub fn filing(&self, key: &FilingKey) -> Result<(Filing, Subject), RegistryError> {
        let f = find_filing(&self.store, key)?;
        let s = subject_of(&self.store, &f)?;
        Ok((f, s))
    }

    /// The active filings of the subjects whose name contains `fragment` (the subject-name
    /// index, see [`RegistryScan::subjects_by_name`]), in subject order: at most `limit`, and
    /// whether more exist. Each subject's filings come from the service-number index under
    /// its subject number, so neither all subjects nor all filings are read.
    pub fn active_filings_by_subject_name(
        &self,
        fragment: &str,
        limit: usize,
    ) -> Result<(Vec<(Filing, Subject)>, bool), RegistryError> {
        let mut out = Vec::new();
        let mut failed = None;
        let store = &self.store;
        let mut add = |s: &Subject| -> Result<bool, StoreError> {
            let Some(n) = &s.number else {
                return Ok(true);
            };
            for id in store.filings_under_subject_number(n)? {
                match store.filing(id)? {
                    Some(f) if f.status == Status::Active && f.subject_id == s.id => {
                        if out.len() == limit {
                            return Ok(false);
                        }
                        out.push((f, s.clone()));
                    }
                    _ => {}
                }
            }
            Ok(true)
        };
        let mut more = false;
        self.store
            .subjects_by_name(fragment, &mut |s| match add(&s) {
                Ok(go_on) => {
                    more = !go_on;
                    go_on
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok((out, more))
    }

    pub fn filing_view(&self, key: &FilingKey) -> Result<FilingView, RegistryError> {
        let (f, s) = self.filing(key)?;
        Ok(FilingView::new(&f, &s))
    }

    /// [`Registry::filing_view`] at `now` (shows an overdue annual review).
    pub fn filing_view_at(&self, key: &FilingKey, now: i64) -> Result<FilingView, RegistryError> {
        let (f, s) = self.filing(key)?;
        Ok(FilingView::at(&f, &s, now))
    }

    /// The current certificate of the filing covering `host`.
    pub fn certificate_for(&self, host: &str) -> Result<IssuedCert, RegistryError> {
        let (f, _) = self.filing(&FilingKey::Domain(host.to_string()))?;
        let why = format!(
            "certificate for {host} (filing {} is {})",
            f.id,
            f.status_label()
        );
        f.certificate.ok_or(RegistryError::NotFound(why))
    }

    /// A read-only lookup of filing facts for certificate verification.
    pub fn lookup(&self) -> StoreLookup<'_, S> {
        StoreLookup(&self.store)
    }
}
