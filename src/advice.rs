//! The filer's self-check wording: for each finding code, what is wrong and exactly how to fix
//! it, in Chinese with English. Pure text assembly; `beian check` and `GET /api/check` use it.

/// What the advice may name: the host checked and what the registry says about it.
#[derive(Debug, Clone, Default)]
pub struct AdviceContext {
    /// The host that was checked, e.g. `www.example.com`.
    pub host: String,
    /// The number the registry has for this host (service number), if filed.
    pub service_number: Option<String>,
    /// The subject number, if filed.
    pub subject_number: Option<String>,
    /// Which number the policy requires on the homepage: `service`, `subject` or `either`.
    pub required_number: String,
    /// The number(s) the homepage showed.
    pub shown_numbers: Vec<String>,
    /// The licence on file, for operating services.
    pub licence: Option<String>,
    /// Providers named by the filing.
    pub providers: Vec<String>,
    /// Provider whose address block serves the site.
    pub serving_provider: Option<String>,
}

/// One problem, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub zh: String,
    pub en: String,
    pub fix_zh: String,
    pub fix_en: String,
}

/// The link target a filing number must point to.
pub const MIIT_URL: &str = "https://beian.miit.gov.cn/";

fn number_to_show(ctx: &AdviceContext) -> String {
    match (
        ctx.required_number.as_str(),
        &ctx.service_number,
        &ctx.subject_number,
    ) {
        ("subject", _, Some(s)) => s.clone(),
        (_, Some(s), _) => s.clone(),
        (_, None, Some(s)) => s.clone(),
        _ => "(your filing number / 您的备案号)".to_string(),
    }
}

/// The footer HTML a filer pastes: the number, linked to the filing system.
pub fn footer_snippet(ctx: &AdviceContext) -> String {
    let num = number_to_show(ctx);
    format!("<a href=\"{MIIT_URL}\" target=\"_blank\">{num}</a>")
}

/// Advice for a finding code. Unknown codes get a generic text naming the code.
pub fn advice(code: &str, ctx: &AdviceContext) -> Advice {
    let host = &ctx.host;
    let num = number_to_show(ctx);
    let link = footer_snippet(ctx);
    let (zh, en, fix_zh, fix_en) = match code {
        "unfiled" => (
            format!("{host} 没有有效的ICP备案。"),
            format!("No active ICP filing covers {host}."),
            "未备案不得提供互联网信息服务。请通过接入商提交网站备案（主体信息、网站信息、全部域名、接入商），审核通过后在首页底部展示备案号。".to_string(),
            "Unfiled sites may not operate. File the website through your access provider (subject, website, all its domains, providers); once approved, show the number at the bottom of the homepage.".to_string(),
        ),
        "filing_revoked" => (
            format!("{host} 的备案已被注销或撤销，但网站仍在运行。"),
            format!("The filing covering {host} was cancelled or revoked, yet the site is up."),
            "请停止服务，或重新提交备案并等待审核通过后再开通。".to_string(),
            "Take the site offline, or file again and wait for approval before serving.".to_string(),
        ),
        "cert_missing" => (
            format!("https://{host}/cert/bazs.cert 没有备案证书。"),
            format!("No certificate at https://{host}/cert/bazs.cert."),
            "用 `beian cert export --domain 您的域名` 导出（或在备案系统下载）证书，原样放在网站根目录的 cert/bazs.cert（文件名是 bazs，不是 bazx），不要修改内容。".to_string(),
            "Export your certificate (`beian cert export --domain YOUR_DOMAIN`, or download it from the filing system) and serve it unchanged at /cert/bazs.cert (the name is bazs, not bazx).".to_string(),
        ),
        "cert_misplaced" => (
            format!("证书放在了错误的路径 https://{host}/cert/bazx.cert。"),
            format!("The certificate is at the wrong path https://{host}/cert/bazx.cert."),
            "把文件改名为 /cert/bazs.cert（官方FAQ里的 bazx 是笔误）。".to_string(),
            "Rename it to /cert/bazs.cert (the official FAQ's `bazx` is a typo).".to_string(),
        ),
        "cert_malformed" => (
            "/cert/bazs.cert 的内容无法解析，或超过大小限制。".to_string(),
            "/cert/bazs.cert cannot be parsed, or is too large.".to_string(),
            "重新导出证书并以二进制原样上传（不要用编辑器打开保存，不要转换编码或换行符），确认服务器不会在出错时返回HTML页面。".to_string(),
            "Export the certificate again and upload it byte for byte (do not re-save it in an editor or convert encodings or line endings); make sure the server does not answer with an HTML page.".to_string(),
        ),
        "cert_bad_signature" => (
            "证书签名无效，或签名密钥未知/已作废。".to_string(),
            "The certificate's signature is invalid, or its key is unknown or compromised.".to_string(),
            "证书被改动过或不是备案系统签发的。请从备案系统重新导出当前证书并替换。".to_string(),
            "The certificate was altered or not issued by the filing registry. Export the current certificate again and replace it.".to_string(),
        ),
        "cert_domain_mismatch" => (
            format!("证书有效，但不包含 {host}（可能是从其他网站复制的）。"),
            format!("The certificate is genuine but does not cover {host} (copied from another site?)."),
            format!("放置本网站自己的备案证书。如果 {host} 属于已备案网站，请先提交变更把该域名加入备案，审核通过后导出新证书。"),
            format!("Serve this site's own certificate. If {host} belongs to a filed website, file a change adding the domain; after approval export the new certificate."),
        ),
        "cert_superseded" => (
            "证书是旧版本，备案已签发了更新的证书。".to_string(),
            "The certificate is an older one; the filing has a newer certificate.".to_string(),
            "变更审核通过后旧证书作废。请导出当前证书替换 /cert/bazs.cert。".to_string(),
            "An approved change superseded it. Export the current certificate and replace /cert/bazs.cert.".to_string(),
        ),
        "cert_expired" => (
            "证书已过期：年度核验逾期。".to_string(),
            "The certificate has expired: the annual review is overdue.".to_string(),
            "请完成年度核验，然后导出新证书替换。".to_string(),
            "Complete the annual review, then export the new certificate and replace the old one.".to_string(),
        ),
        "number_missing" => (
            "首页没有可见的备案号。".to_string(),
            "No filing number is visible on the homepage.".to_string(),
            format!("在首页底部居中位置以可见文字展示 {num}，并链接到 {MIIT_URL}，例如：{link}"),
            format!("Show {num} as visible text at the bottom centre of the homepage, linked to {MIIT_URL}, e.g. {link}"),
        ),
        "number_mismatch" => (
            format!("首页展示的备案号（{}）不是本网站的备案号。", ctx.shown_numbers.join("、")),
            format!("The homepage shows {} but not this site's number.", ctx.shown_numbers.join(", ")),
            format!("把展示的号码改为 {num}。"),
            format!("Show {num} instead."),
        ),
        "number_unlinked" => (
            "备案号没有链接到工信部备案系统。".to_string(),
            "The filing number is not linked to the MIIT filing system.".to_string(),
            format!("让备案号文字本身成为指向 {MIIT_URL} 的链接：{link}"),
            format!("Make the number's text itself a link to {MIIT_URL}: {link}"),
        ),
        "number_misplaced" => (
            "备案号不在页面底部。".to_string(),
            "The filing number is not in the footer.".to_string(),
            "把备案号放到首页底部（页脚）居中位置。".to_string(),
            "Move the number to the footer, at the bottom centre of the homepage.".to_string(),
        ),
        "licence_missing" => (
            "经营性网站没有展示经营许可证编号。".to_string(),
            "An operating service does not show its licence number.".to_string(),
            format!("在首页底部展示经营许可证编号{}。", ctx.licence.as_deref().map(|l| format!("（{l}）")).unwrap_or_default()),
            format!("Show the operating licence number{} at the bottom of the homepage.", ctx.licence.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()),
        ),
        "access_provider_mismatch" => (
            format!("服务本网站的地址属于接入商“{}”，但备案没有登记该接入商。", ctx.serving_provider.as_deref().unwrap_or("?")),
            format!("The address serving the site belongs to provider {:?}, which the filing does not name.", ctx.serving_provider.as_deref().unwrap_or("?")),
            format!("更换接入商时需要新接入商在备案中添加接入（当前登记：{}），或把网站迁回登记的接入商。", ctx.providers.join("、")),
            format!("When you change provider, the new provider must add access to the filing (on file: {}); or move the site back.", ctx.providers.join(", ")),
        ),
        other => (
            format!("检查发现问题：{other}"),
            format!("Finding: {other}"),
            "请参阅 beian 文档中的该代码说明。".to_string(),
            "See the beian documentation for this code.".to_string(),
        ),
    };
    Advice {
        zh,
        en,
        fix_zh,
        fix_en,
    }
}

/// What the advice for one checked target may name: its host, the filing the registry has
/// for it, the numbers its homepage showed and the provider serving it.
pub fn context(
    result: &crate::scan::TargetResult,
    snapshot: &crate::registry::snapshot::Snapshot,
    required_number: &str,
) -> AdviceContext {
    let obs = &result.observation;
    let filing = snapshot.lookup_host(&obs.host);
    AdviceContext {
        host: obs.host.clone(),
        service_number: filing.map(|f| f.service_number.to_string()),
        subject_number: filing.map(|f| f.subject_number.to_string()),
        required_number: required_number.to_string(),
        shown_numbers: obs
            .page
            .as_ref()
            .map(|p| p.icp.iter().map(|m| m.number.to_string()).collect())
            .unwrap_or_default(),
        licence: filing.and_then(|f| f.licence.as_ref().map(|l| l.to_string())),
        providers: filing.map(|f| f.providers.clone()).unwrap_or_default(),
        serving_provider: obs
            .dns
            .used
            .and_then(|ip| snapshot.provider_of(ip).map(str::to_string)),
    }
}

/// Why a site could not be checked, in Chinese and English.
pub fn unknown_reason(reason: crate::verdict::UnknownReason) -> (&'static str, &'static str) {
    use crate::verdict::UnknownReason;
    match reason {
        UnknownReason::Dns => ("域名无法解析。", "The name does not resolve."),
        UnknownReason::BlockedAddress => (
            "域名解析到内网或保留地址，检查器不会访问。",
            "The name resolves to a private or reserved address, which the checker does not visit.",
        ),
        UnknownReason::Connect => ("无法连接服务器。", "Could not connect to the server."),
        UnknownReason::Tls => ("HTTPS握手失败。", "The TLS handshake failed."),
        UnknownReason::Timeout | UnknownReason::Deadline => {
            ("服务器响应超时。", "The server did not answer in time.")
        }
        UnknownReason::Http403 => (
            "服务器拒绝访问（403，可能是防火墙/WAF）。请放行检查器。",
            "The server refused access (403, probably a WAF). Allow the checker through.",
        ),
        UnknownReason::Http5xx => ("服务器错误（5xx）。", "The server answered with an error (5xx)."),
        UnknownReason::TooManyRedirects => ("重定向次数过多。", "Too many redirects."),
        UnknownReason::RedirectLoop => ("重定向形成循环。", "The redirects go round in a loop."),
        UnknownReason::BadRedirect => (
            "重定向目标无效（不是 http/https 地址）。",
            "A redirect points to an invalid or non-http(s) location.",
        ),
        UnknownReason::Reset => ("连接被服务器重置。", "The server reset the connection."),
        UnknownReason::HeaderTooLarge => (
            "服务器响应头过大。",
            "The server's response headers are too large.",
        ),
        UnknownReason::Http404 => ("首页不存在（404）。", "The homepage does not exist (404)."),
        UnknownReason::Http4xx => ("服务器拒绝请求（4xx）。", "The server refused the request (4xx)."),
        UnknownReason::RateLimited => (
            "服务器要求降低访问频率（429）。请稍后再试或放行检查器。",
            "The server asked the checker to slow down (429). Try later or allow the checker through.",
        ),
        UnknownReason::Challenge => (
            "首页是防火墙/人机验证页面，看不到网站内容。请放行检查器。",
            "The homepage is a WAF or bot-challenge page, not the site. Allow the checker through.",
        ),
        UnknownReason::NeedsRender => (
            "首页由脚本生成，需要浏览器渲染才能看到页脚；本次未能渲染。",
            "The homepage is built by scripts and needs a browser to show its footer; it could not be rendered.",
        ),
        UnknownReason::CertUnreachable => (
            "无法取得 /cert/bazs.cert（既不是 200 也不是 404），证书检查未完成。请确保该路径可直接访问。",
            "/cert/bazs.cert answered neither 200 nor 404, so the certificate could not be checked. Make sure the path is reachable.",
        ),
        UnknownReason::Other => ("首页无法读取。", "The homepage could not be read."),
    }
}

/// The whole human self-check report for one target, in Chinese with English.
pub fn render_report(
    result: &crate::scan::TargetResult,
    snapshot: &crate::registry::snapshot::Snapshot,
    required_number: &str,
) -> String {
    use crate::verdict::Verdict;
    use std::fmt::Write;
    let a = &result.assessment;
    let obs = &result.observation;
    let filing = snapshot.lookup_host(&obs.host);
    let ctx = context(result, snapshot, required_number);
    let mut s = String::new();
    let _ = writeln!(s, "beian 自检 / self-check: {}", obs.target);
    let verdict_zh = match a.verdict {
        Verdict::Compliant => "合规",
        Verdict::Noncompliant => "不合规",
        Verdict::Unfiled => "未备案",
        Verdict::Unknown(_) => "无法判断",
    };
    let _ = writeln!(s, "结论 Verdict: {verdict_zh} / {}", a.verdict);
    if let Some(f) = filing {
        let _ = writeln!(
            s,
            "备案 Filing: {} （主体 subject {}，{}） {:?}",
            f.service_number, f.subject_number, f.subject_name, f.state
        );
    }
    let _ = writeln!(s, "证书 Certificate (/cert/bazs.cert): {}", a.cert_status);
    if !ctx.shown_numbers.is_empty() {
        let _ = writeln!(
            s,
            "首页备案号 Numbers shown: {}",
            ctx.shown_numbers.join(", ")
        );
    }
    if let Verdict::Unknown(reason) = a.verdict {
        let (zh, en) = unknown_reason(reason);
        let _ = writeln!(s, "\n无法检查 Could not check: {zh} / {en}");
    }
    if a.findings.is_empty() {
        if a.verdict == Verdict::Compliant {
            let _ = writeln!(s, "\n没有发现问题。 No problems found.");
        }
        return s;
    }
    let _ = writeln!(s, "\n问题 Problems:");
    for (i, f) in a.findings.iter().enumerate() {
        let adv = advice(f.code.as_str(), &ctx);
        let _ = writeln!(
            s,
            "{}. [{}] {} — {}\n   {}",
            i + 1,
            f.severity.as_str(),
            f.code.as_str(),
            adv.zh,
            adv.en
        );
        let _ = writeln!(s, "   修改方法: {}", adv.fix_zh);
        let _ = writeln!(s, "   How to fix: {}", adv.fix_en);
        if !f.legal_basis.is_empty() {
            let _ = writeln!(s, "   依据 Legal basis: {}", f.legal_basis);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_advice_names_the_number_and_the_link() {
        let ctx = AdviceContext {
            host: "www.example.com".into(),
            service_number: Some("京ICP备12345678号-1".into()),
            subject_number: Some("京ICP备12345678号".into()),
            required_number: "service".into(),
            ..Default::default()
        };
        let a = advice("number_missing", &ctx);
        assert!(a.fix_zh.contains("京ICP备12345678号-1"));
        assert!(a.fix_en.contains("https://beian.miit.gov.cn/"));
        let subj = AdviceContext {
            required_number: "subject".into(),
            ..ctx
        };
        assert!(advice("number_unlinked", &subj)
            .fix_en
            .contains("京ICP备12345678号<"));
    }

    #[test]
    fn cert_advice_names_the_path() {
        let ctx = AdviceContext {
            host: "a.test".into(),
            ..Default::default()
        };
        assert!(advice("cert_missing", &ctx)
            .en
            .contains("https://a.test/cert/bazs.cert"));
        assert!(advice("cert_misplaced", &ctx)
            .fix_en
            .contains("/cert/bazs.cert"));
        assert!(advice("something_new", &ctx).en.contains("something_new"));
    }
}
