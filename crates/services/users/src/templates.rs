//! Mail texts per kind and language, with per-domain overrides: a domain's
//! `templates_dir` may hold `<kind>.<lang>.txt` (first line the subject, the rest the
//! body); a file missing there is the built-in text. Placeholders `{link}`, `{domain}`
//! and `{hours}` are replaced; nothing else of a request reaches a mail. The language
//! comes from the request's `Accept-Language` (Russian or English, English when neither).

/// What a mail is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A password recovery link.
    Recovery,
    /// An invitation.
    Invitation,
    /// A registration's confirmation link.
    Registration,
}

impl Kind {
    /// The name in file names and links.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Recovery => "recovery",
            Kind::Invitation => "invitation",
            Kind::Registration => "registration",
        }
    }
}

/// A language of the texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Russian.
    Ru,
    /// English.
    En,
}

impl Lang {
    /// `ru` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }
}

/// The language an `Accept-Language` header prefers among ours (highest `q` first).
pub fn lang(accept: Option<&str>) -> Lang {
    let mut best: Option<(f32, Lang)> = None;
    for part in accept.unwrap_or("").split(',').take(16) {
        let mut it = part.trim().split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
        let l = match tag.split('-').next() {
            Some("ru") => Lang::Ru,
            Some("en") => Lang::En,
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, l));
        }
    }
    best.map(|(_, l)| l).unwrap_or(Lang::En)
}

fn builtin(kind: Kind, lang: Lang) -> &'static str {
    match (kind, lang) {
        (Kind::Recovery, Lang::En) => "Password recovery for {domain}\nSomeone asked to set a new password for your account in {domain}.\nTo do it, open this link within {hours} h (it works once):\n\n{link}\n\nIf it was not you, do nothing: your password stays as it is.\n",
        (Kind::Recovery, Lang::Ru) => "Восстановление пароля в {domain}\nКто-то попросил задать новый пароль вашей учётной записи в {domain}.\nЧтобы сделать это, откройте ссылку в течение {hours} ч (она действует один раз):\n\n{link}\n\nЕсли это были не вы, ничего не делайте: пароль останется прежним.\n",
        (Kind::Invitation, Lang::En) => "Invitation to {domain}\nYou are invited to {domain}.\nTo accept, open this link within {hours} h and choose a password:\n\n{link}\n",
        (Kind::Invitation, Lang::Ru) => "Приглашение в {domain}\nВас пригласили в {domain}.\nЧтобы принять приглашение, откройте ссылку в течение {hours} ч и задайте пароль:\n\n{link}\n",
        (Kind::Registration, Lang::En) => "Confirm your registration in {domain}\nTo finish your registration in {domain}, open this link within {hours} h:\n\n{link}\n\nIf it was not you, do nothing.\n",
        (Kind::Registration, Lang::Ru) => "Подтверждение регистрации в {domain}\nЧтобы завершить регистрацию в {domain}, откройте ссылку в течение {hours} ч:\n\n{link}\n\nЕсли это были не вы, ничего не делайте.\n",
    }
}

/// Subject and body of a `kind` mail in `lang`, from `dir` when it has the file.
pub fn render(dir: Option<&str>, kind: Kind, lang: Lang, vars: &[(&str, &str)]) -> (String, String) {
    let own = dir.and_then(|d| std::fs::read_to_string(std::path::Path::new(d).join(format!("{}.{}.txt", kind.name(), lang.code()))).ok());
    let text = own.as_deref().unwrap_or_else(|| builtin(kind, lang));
    let (subject, body) = text.split_once('\n').unwrap_or((text, ""));
    let fill = |s: &str| vars.iter().fold(s.to_string(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v));
    // A subject is one line whatever a template or a value holds.
    let subject: String = fill(subject).chars().filter(|c| !c.is_control()).collect();
    (subject, fill(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_russian_or_english() {
        assert_eq!(lang(Some("ru-RU,ru;q=0.9,en;q=0.8")), Lang::Ru);
        assert_eq!(lang(Some("en-US,en;q=0.9,ru;q=0.5")), Lang::En);
        assert_eq!(lang(Some("de-DE,ru;q=0.3")), Lang::Ru);
        assert_eq!(lang(Some("de")), Lang::En);
        assert_eq!(lang(None), Lang::En);
    }

    #[test]
    fn a_domain_file_wins_and_placeholders_are_filled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("recovery.en.txt"), "Reset at {domain}\r\nGo to {link}\n").unwrap();
        let d = dir.path().to_str();
        let (s, b) = render(d, Kind::Recovery, Lang::En, &[("domain", "a.ru"), ("link", "https://x/?token=t")]);
        assert_eq!(s, "Reset at a.ru");
        assert_eq!(b, "Go to https://x/?token=t\n");
        let (s, b) = render(d, Kind::Recovery, Lang::Ru, &[("domain", "a.ru"), ("link", "L"), ("hours", "0.5")]);
        assert_eq!(s, "Восстановление пароля в a.ru");
        assert!(b.contains("L\n") && b.contains("0.5 ч"), "{b}");
    }
}
