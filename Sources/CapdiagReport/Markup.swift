/// Neutralises captured text for each output: control characters (ANSI escapes included)
/// become `\xNN`, and the target language's markup becomes inert, so a request target like
/// `/<script>` or `` `x` | [a](b) `` is shown, never interpreted.
public enum Markup {
    /// Control characters as visible escapes (terminal, every format).
    public static func visible(_ text: String) -> String { TextReport.safe(text) }

    /// Markdown inline text, escaped only where a construct could start, so that GitHub,
    /// GitLab (CommonMark) and MkDocs (Python-Markdown, which prints a backslash before `:` or
    /// `~` literally) render the same text: `\`, `` ` ``, `*`, `[`, `]` and `|` always; `_` only at
    /// a word's edge (intraword underscores make no emphasis: `keepalive_race`, `proxy_read_timeout`);
    /// `~` only doubled (strike-through); the `//` of `scheme://` broken with an entity so no
    /// bare URL autolinks; `<`, `>`, `&` as entities so no raw HTML passes.
    public static func markdown(_ text: String) -> String {
        let characters = Array(visible(text))
        var out = ""
        for (index, character) in characters.enumerated() {
            let previous: Character? = index > 0 ? characters[index - 1] : nil
            let next: Character? = index + 1 < characters.count ? characters[index + 1] : nil
            func isWord(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber } ?? false }
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\\", "`", "*", "[", "]", "|":
                out += "\\" + String(character)
            case "_" where !(isWord(previous) && isWord(next)):
                out += "\\_"
            case "~" where previous == "~" || next == "~":
                out += "\\~"
            case "/" where previous == ":" && next == "/":
                out += "&#47;"
            default: out.append(character)
            }
        }
        return out
    }

    /// Text inside a fenced code block: only a backtick run could end the fence.
    public static func codeBlock(_ text: String) -> String {
        String(visible(text).map { $0 == "`" ? "'" : $0 })
    }

    /// capdiag's own sentences in HTML: escaped, and the `code` spans they use (configuration
    /// names, commands) as <code> instead of literal backticks. Captured text never goes here.
    public static func htmlProse(_ text: String) -> String {
        let escaped = html(text)
        var out = ""
        var open = false
        for character in escaped {
            if character == "`" {
                out += open ? "</code>" : "<code>"
                open.toggle()
            } else {
                out.append(character)
            }
        }
        if open { out += "</code>" }
        return out
    }

    /// HTML text and attribute values.
    public static func html(_ text: String) -> String {
        var out = ""
        for character in visible(text) {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
