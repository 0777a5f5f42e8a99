// Package textsafe makes text that came from outside safe to print on a terminal or in a log line,
// and checks names that people will read as who did something.
//
// Anything a link holder, a proxy header, a manifest or AWS can set — a decision's reason, a
// decider's name, a user agent, a release id, a function name — may carry control characters (ESC
// sequences that clear a terminal or set its title, CR and LF that forge log lines) or format
// characters (a right-to-left override or a zero-width space that disguise a name). [Clean]
// escapes them so the text prints as one visible line; [Name] refuses them in names outright;
// [Cut] shortens text without splitting a character.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Dangerous reports whether r would change how a terminal or a reader sees the text around it:
// control characters (C0, DEL, C1), Unicode format characters (bidirectional overrides and
// isolates, zero-width spaces and joiners, the BOM), line and paragraph separators, and invalid
// UTF-8 (utf8.RuneError).
func Dangerous(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

// Clean returns s with every dangerous rune (see [Dangerous]) written as a Go escape (\x1b,
// \u202e), so the text prints as a single line that shows what was there. Text with nothing
// dangerous is returned unchanged.
func Clean(s string) string {
	if !strings.ContainsFunc(s, Dangerous) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x100 && Dangerous(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case Dangerous(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Name checks a name that people will read as who decided or acted: not empty, at most max bytes,
// valid UTF-8, and without control or format characters. The error says what is wrong.
func Name(s string, max int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("is empty")
	case len(s) > max:
		return fmt.Errorf("is longer than %d bytes", max)
	case !utf8.ValidString(s):
		return fmt.Errorf("is not valid UTF-8")
	}
	if i := strings.IndexFunc(s, Dangerous); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("contains the invisible or control character U+%04X", r)
	}
	return nil
}

// Cut returns s shortened to at most max bytes, on a character boundary, so a cut never leaves
// half a character behind.
func Cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
