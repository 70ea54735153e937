//! The pages' HTML: one small document per page, every value escaped, no script and no
//! style (the CSP allows neither), texts in Russian or English.

use crate::templates::Lang;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

/// A text of the pages.
#[derive(Debug, Clone, Copy)]
pub enum T {
    /// Title: ask for a recovery link.
    Recover,
    /// Title: set a new password.
    SetPassword,
    /// Title: accept an invitation.
    Accept,
    /// Title: register.
    Register,
    /// Title: confirm a registration.
    Confirm,
    /// Label: login.
    Login,
    /// Label: e-mail.
    Email,
    /// Label: new password.
    Password,
    /// Button: send.
    Send,
    /// Result: done.
    Done,
    /// Error: the form was not sent from this site's page.
    Csrf,
    /// Result: a link was sent if the account exists.
    Sent,
    /// Error: a link without a usable token.
    BadLink,
    /// Title: log in with a provider.
    Providers,
    /// Result: signed in.
    SignedIn,
    /// Title: the provider's answer was refused.
    Refused,
}

/// `t` in `lang`.
pub fn text(t: T, lang: Lang) -> &'static str {
    let (en, ru) = match t {
        T::Recover => ("Password recovery", "Восстановление пароля"),
        T::SetPassword => ("Set a new password", "Новый пароль"),
        T::Accept => ("Accept the invitation", "Принять приглашение"),
        T::Register => ("Registration", "Регистрация"),
        T::Confirm => ("Confirm the registration", "Подтверждение регистрации"),
        T::Login => ("Login", "Логин"),
        T::Email => ("E-mail", "Электронная почта"),
        T::Password => ("New password", "Новый пароль"),
        T::Send => ("Send", "Отправить"),
        T::Done => ("Done.", "Готово."),
        T::Sent => {
            ("If the account exists, a link was sent to its address.", "Если такая учётная запись есть, ссылка отправлена на её адрес.")
        }
        T::BadLink => ("This link is not valid: ask for a new one.", "Ссылка недействительна: запросите новую."),
        T::Providers => ("Log in", "Вход"),
        T::SignedIn => ("You are signed in as", "Вы вошли как"),
        T::Refused => ("The login was refused", "Вход отклонён"),
        T::Csrf => (
            "The form has expired or was not sent from this site: open the page again.",
            "Форма устарела или отправлена не с этого сайта: откройте страницу снова.",
        ),
    };
    match lang {
        Lang::En => en,
        Lang::Ru => ru,
    }
}

/// A field of a form: (name, label, input type).
pub type Field<'a> = (&'a str, T, &'a str);

/// A page with a form posting to `action`, with the CSRF value and hidden values.
pub fn form(lang: Lang, title: T, domain: &str, action: &str, csrf: &str, hidden: &[(&str, &str)], fields: &[Field]) -> String {
    let mut body =
        format!("<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n", esc(action), esc(csrf));
    for (k, v) in hidden {
        body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", esc(k), esc(v)));
    }
    for (name, label, kind) in fields {
        let auto = match *kind {
            "password" => " autocomplete=\"new-password\"",
            "email" => " autocomplete=\"email\"",
            _ => " autocomplete=\"username\"",
        };
        body.push_str(&format!(
            "<p><label>{}<br><input type=\"{kind}\" name=\"{name}\" required maxlength=\"254\"{auto}></label></p>\n",
            esc(text(*label, lang))
        ));
    }
    body.push_str(&format!("<p><button type=\"submit\">{}</button></p>\n</form>", esc(text(T::Send, lang))));
    page(lang, title, domain, &body)
}

/// A page of links (text, href).
pub fn links(lang: Lang, title: T, domain: &str, items: &[(String, String)]) -> String {
    let list: String = items.iter().map(|(t, h)| format!("<li><a href=\"{}\">{}</a></li>\n", esc(h), esc(t))).collect();
    page(lang, title, domain, &format!("<ul>\n{list}</ul>"))
}

/// A page saying `message`.
pub fn message(lang: Lang, title: T, domain: &str, message: &str) -> String {
    page(lang, title, domain, &format!("<p>{}</p>", esc(message)))
}

fn page(lang: Lang, title: T, domain: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {}</title>\n</head>\n<body>\n<h1>{}</h1>\n{body}\n</body>\n</html>\n",
        lang.code(),
        esc(text(title, lang)),
        esc(domain),
        esc(text(title, lang))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_pages_have_no_script_or_style() {
        assert_eq!(esc("<script>\"x\"&'y'\r\n"), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;");
        let p = form(
            Lang::Ru,
            T::SetPassword,
            "a.ru",
            "/users/a.ru/recovery",
            "c\"srf",
            &[("token", "<b>")],
            &[("password", T::Password, "password")],
        );
        assert!(p.contains("<html lang=\"ru\">") && p.contains("Новый пароль"));
        assert!(p.contains("value=\"&lt;b&gt;\"") && p.contains("value=\"c&quot;srf\""));
        assert!(!p.contains("<script") && !p.contains("style"));
    }
}
