package textsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain reason, ünïcode ok", "plain reason, ünïcode ok"},
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"line\r\nforged: approved", `line\x0d\x0aforged: approved`},
		{"ad\u202emin", `ad\u202emin`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"c1\u009bcsi", `c1\x9bcsi`},
		{"bad\xffbyte", `bad\xffbyte`},
	} {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.ContainsFunc(Clean(c.in), Dangerous) {
			t.Errorf("Clean(%q) still holds a dangerous rune", c.in)
		}
	}
}

func TestName(t *testing.T) {
	for _, ok := range []string{"Ada Lovelace", "José Müller", "李雷"} {
		if err := Name(ok, 100); err != nil {
			t.Errorf("Name(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", "ad\u202emin", "a\u200bb", "tab\there", "esc\x1b", "\xff", strings.Repeat("x", 101)} {
		if err := Name(bad, 100); err == nil {
			t.Errorf("Name(%q) = nil, want an error", bad)
		}
	}
}

func TestCut(t *testing.T) {
	s := strings.Repeat("é", 200) // 2 bytes each
	for max := 0; max < 12; max++ {
		got := Cut(s, max)
		if len(got) > max || !utf8.ValidString(got) {
			t.Fatalf("Cut(_, %d) = %q (%d bytes)", max, got, len(got))
		}
	}
	if got := Cut("short", 300); got != "short" {
		t.Fatalf("Cut(short) = %q", got)
	}
}
