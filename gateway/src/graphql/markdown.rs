//! Hangout descriptions: Markdown rendered to HTML that is safe to insert into a page.

use pulldown_cmark::{Options, Parser};

/// Renders CommonMark (plus tables and strikethrough) and sanitizes the result with ammonia:
/// no scripts, no event handlers, no `javascript:` links; links get `rel="noopener noreferrer
/// nofollow"`.
#[must_use]
pub fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_scripts_are_removed() {
        let html = render("# Picnic\n\n**bring** [food](javascript:alert(1))<script>x()</script>");
        assert!(html.contains("<h1>Picnic</h1>"));
        assert!(html.contains("<strong>bring</strong>"));
        assert!(!html.contains("script"));
        assert!(!html.contains("javascript"));
    }
}
