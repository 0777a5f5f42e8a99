package logs

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// FuzzFilterPattern compiles arbitrary filter patterns (up to CloudWatch Logs' 1024 characters)
// and matches them against log lines of each kind: no panic, and a pattern that does not
// compile is refused with a *patternError (answered as InvalidParameterException). The fuzzer
// reports an input that hangs. Run it longer with
//
//	go test -run '^$' -fuzz '^FuzzFilterPattern$' -fuzztime 10m ./sandbox/logs
func FuzzFilterPattern(f *testing.F) {
	for _, seed := range []string{
		"", "ERROR", "?ERROR ?WARN -INFO", `"Failed to process" - "Exiting"`, "%Status: [a-z]+%",
		`{ $.eventType = "UpdateTrail" }`, `{ ($.latency > 500) && ($.errorCode = 4* || $.ThisFlag IS TRUE) }`,
		`{ $.objectList[1].id = 2 }`, `{ $.SomeObject IS NULL }`, `{ $.x NOT EXISTS }`, `{ $.users[0].email = "*@example.com" }`,
		"[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]",
		"[..., request=*.html*, status_code=4*,]", `[ip = %^127\.0\.0\.[1-9]$%, ...]`, "[a, ..., b = x || c = y, ..., c]",
		"{ ((((($.a = 1))))) }", "[..., ..., ..., ...]", `"\"\\"`, "%%", "{ $.a[99999999999999999999] = 1 }",
	} {
		f.Add(seed)
	}
	lines := []string{
		`{"eventType":"UpdateTrail","latency":550,"errorCode":"400","ThisFlag":true,"SomeObject":null,"objectList":[{"id":1},{"id":2}],"users":[{"email":"a@example.com"}]}`,
		`127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`,
		"REPORT RequestId: 3f1c\tDuration: 12.50 ms\tStatus: timeout\n",
		"[ERROR] A fatal exception has occurred",
		strings.Repeat("a b ", 64),
		"",
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 1024 {
			t.Skip("CloudWatch Logs refuses filter patterns over 1024 characters before parsing them")
		}
		p, err := compilePattern(src)
		if err != nil {
			var pe *patternError
			if !errors.As(err, &pe) || pe.msg == "" {
				t.Fatalf("compilePattern(%q): %v is not a *patternError", src, err)
			}
			return
		}
		for _, line := range lines {
			got := p.match(line)
			// The memoized alignment agrees with trying every stretch of every ellipsis (on lines
			// short enough for the latter).
			if d, ok := p.(delimitedPattern); ok && d.local && len(splitFields(line)) <= 12 {
				unbounded := math.MaxInt
				if want := d.align(splitFields(line), 0, 0, map[string]string{}, &unbounded); got != want {
					t.Fatalf("pattern %q on %q: %v, but trying every alignment says %v", src, line, got, want)
				}
			}
		}
	})
}

// Ellipses cost time in proportion to fields, not fields to the power of ellipses: eight of them
// over 129 fields would take hours tried one stretch at a time (five took 25 s).
func TestManyEllipses(t *testing.T) {
	line := strings.Repeat("a b ", 64) + "zz" // 129 fields
	slots := func(last string) string {
		var b strings.Builder
		for i := range 8 {
			fmt.Fprintf(&b, "..., x%d = a, ", i)
		}
		return "[" + b.String() + last + "]"
	}
	for pat, want := range map[string]bool{
		slots("b, last = zz"): true,  // …, a, b, zz
		slots("last = zz"):    false, // the field before zz is b
		slots("b, last = yy"): false,
		"[" + strings.Repeat("..., ", 8) + "b, last = zz]": true,
	} {
		p, err := compilePattern(pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.match(line); got != want {
			t.Errorf("%s: %v, want %v", pat, got, want)
		}
	}
}

// A condition that names another slot's field needs every binding tried, about fields^ellipses of
// them: a budget bounds the work one line may take, so one FilterLogEvents cannot hold the service
// (a pattern of six ellipses over 41 fields took a third of a second, each more ×7).
func TestCrossFieldPatternsAreBounded(t *testing.T) {
	line := strings.Repeat("f ", 40) + "zz" // 41 fields
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, "..., x%d, ", i)
	}
	p, err := compilePattern("[" + b.String() + "last = yy || x0 = q]")
	if err != nil {
		t.Fatal(err)
	}
	d := p.(delimitedPattern)
	if d.local {
		t.Fatal("the pattern's condition names another field: it is not local")
	}
	budget := alignBudget
	if d.align(splitFields(line), 0, 0, map[string]string{}, &budget) {
		t.Fatal("matched")
	}
	if budget >= 0 {
		t.Fatalf("the search ended by itself with %d steps left; the test wants one that needs the budget", budget)
	}
	// Within the budget, cross-field conditions still match as they should.
	p, err = compilePattern("[a, ..., last = zz || a = q]")
	if err != nil {
		t.Fatal(err)
	}
	if !p.match("f g h zz") || p.match("f g h yy") || !p.match("q g h yy") {
		t.Fatal("a cross-field pattern matched wrongly")
	}
}
