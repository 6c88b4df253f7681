/// Neutralises captured text for each output: control characters (ANSI escapes included)
/// become `\xNN`, and the target language's markup becomes inert, so a request target like
/// `/<script>` or `` `x` | [a](b) `` is shown, never interpreted.
public enum Markup {
    /// Control characters as visible escapes (terminal, every format).
    public static func visible(_ text: String) -> String { TextReport.safe(text) }

    /// Markdown inline text: every punctuation character Markdown (CommonMark, GFM tables)
    /// gives a meaning is backslash-escaped; `<` and `>` become entities so no raw HTML passes.
    public static func markdown(_ text: String) -> String {
        var out = ""
        for character in visible(text) {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            // Mid-line, these are all that can start markup (emphasis, code, links, tables,
            // strike-through); `:` stops bare-URL autolinks.
            case "\\", "`", "*", "_", "[", "]", "|", "~", ":":
                out += "\\" + String(character)
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
