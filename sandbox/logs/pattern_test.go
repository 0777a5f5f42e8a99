package logs

import "testing"

// The examples come from the CloudWatch Logs documentation of filter pattern syntax.
func TestFilterPatterns(t *testing.T) {
	cloudTrail := `{"eventType":"UpdateTrail","sourceIPAddress":"111.111.111.111","arrayKey":["value","another value"],` +
		`"objectList":[{"name":"a","id":1},{"name":"b","id":2}],"SomeObject":null,"ThisFlag":true,"latency":550,"errorCode":"400"}`
	users := `{"user":{"id":1,"email":"John.Stiles@example.com"},"users":[{"id":2,"email":"John.Doe@example.com"},{"id":3,"email":"Jane.Doe@example.com"}],` +
		`"actions":["GET","PUT","DELETE"],"coordinates":[[0,1,2],[4,5,6],[7,8,9]]}`
	apache := `127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`
	report := "REPORT RequestId: 3f1c\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\tStatus: timeout\n"

	cases := []struct {
		pattern string
		msg     string
		want    bool
	}{
		// Terms: all must appear, case-sensitively, as substrings.
		{"", "anything", true},
		{"ERROR", "[ERROR] A fatal exception has occurred", true},
		{"ERROR", "Exiting with ERRORCODE: -1", true},
		{"ERROR", "error: lower case", false},
		{"ERROR Exception", "[ERROR] Caught IllegalArgumentException", true},
		{"ERROR Exception", "[ERROR] Caught nothing", false},
		{"Failed to process the request", "[WARN] Failed to process the request", true},
		{`"Failed to process"`, "Failed to process the request", true},
		{`"Failed to process"`, "Failed the process to", false},
		{`"ERROR" - "Exiting"`, "Exiting with ERRORCODE: -1", false},
		{`"ERROR" - "Exiting"`, "[ERROR] A fatal exception has occurred", true},
		{"ERROR -WARN", "ERROR WARN message", false},
		{"ERROR -WARN", "ERROR message", true},
		{"?ERROR ?WARN", "ERROR WARN message", true},
		{"?ERROR ?WARN", "WARN message", true},
		{"?ERROR ?WARN", "INFO message", false},
		{`?"ERROR" "MainThread" ?"WARN" "Deadlock"`, "WARN Deadlock in pool", true},
		{`?"ERROR" "MainThread" ?"WARN" "Deadlock"`, "ERROR in worker", false},
		{`"Status: timeout"`, report, true},
		{`REPORT "Status: error"`, report, false},
		{"%Status: (timeout|error)%", report, false}, // () is rejected: see the error cases
		{"%Duration: [0-9]+\\.50 ms%", report, true},
		{"%^REPORT%", report, true},
		{"%^Duration%", report, false},
		// JSON patterns.
		{`{ $.eventType = "UpdateTrail" }`, cloudTrail, true},
		{`{ $.eventType = UpdateTrail }`, cloudTrail, true},
		{`{ $.eventType = "Update*" }`, cloudTrail, true},
		{`{ $.eventType = "*Trail" }`, cloudTrail, true},
		{`{ $.eventType = "*dateTr*" }`, cloudTrail, true},
		{`{ $.eventType = "Up*Trail" }`, cloudTrail, false},
		{`{ $.eventType = "updatetrail" }`, cloudTrail, false},
		{`{ $.sourceIPAddress != 123.123.* }`, cloudTrail, true},
		{`{ $.sourceIPAddress != 111.111.* }`, cloudTrail, false},
		{`{ $.arrayKey[0] = "value" }`, cloudTrail, true},
		{`{ $.arrayKey[1] = "value" }`, cloudTrail, false},
		{`{ $.objectList[1].id = 2 }`, cloudTrail, true},
		{`{ $.objectList[1].id = 1 }`, cloudTrail, false},
		{`{ $.SomeObject IS NULL }`, cloudTrail, true},
		{`{ $.ThisFlag IS NULL }`, cloudTrail, false},
		{`{ $.SomeOtherObject NOT EXISTS }`, cloudTrail, true},
		{`{ $.SomeObject NOT EXISTS }`, cloudTrail, false},
		{`{ $.ThisFlag IS TRUE }`, cloudTrail, true},
		{`{ $.ThisFlag IS FALSE }`, cloudTrail, false},
		{`{ $.latency >= 500 }`, cloudTrail, true},
		{`{ $.latency > +1000 }`, cloudTrail, false},
		{`{ $.latency < 10e3 }`, cloudTrail, true},
		{`{ $.latency <= 55.5 }`, cloudTrail, false},
		{`{ $.latency = 550 }`, cloudTrail, true},
		{`{ $.latency != 550 }`, cloudTrail, false},
		{`{ $.latency = * }`, cloudTrail, true},
		{`{ $.missing = * }`, cloudTrail, false},
		{`{ $.missing != 1 }`, cloudTrail, false},
		{`{ $.errorCode = 400 }`, cloudTrail, true},
		{`{ $.errorCode = %^4[0-9]{2}$% }`, cloudTrail, true},
		{`{ $.arrayKey = 1 }`, cloudTrail, false},
		{`{ $.arrayKey != 1 }`, cloudTrail, false},
		{`{ $.eventType = "UpdateTrail" }`, "not json at all", false},
		{`{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }`, users, true},
		{`{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }`, users, false},
		{`{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }`, users, true},
		{`{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }`, users, false},
		{`{ $.coordinates[1][2] = 6 }`, users, true},
		{`{ $.type = "platform.report" && $.record.status != "success" }`, `{"time":"t","type":"platform.report","record":{"requestId":"r","status":"timeout"}}`, true},
		{`{ $.type = "platform.report" && $.record.status != "success" }`, `{"time":"t","type":"platform.report","record":{"requestId":"r","status":"success"}}`, false},
		// Space-delimited patterns.
		{"[ip, user, username, timestamp, request, status_code, bytes]", apache, true},
		{"[ip, user, username, timestamp, request, status_code]", apache, false},
		{"[..., status_code, bytes]", apache, true},
		{"[ip, user, ..., status_code, bytes]", apache, true},
		{"[ip, user, ...]", apache, true},
		{"[ip, user, username, timestamp, request, status_code, bytes > 1000]", apache, true},
		{"[ip, user, username, timestamp, request, status_code, bytes > 2000]", apache, false},
		{"[ip, user, username, timestamp, request, status_code = 404, bytes]", apache, true},
		{"[ip, user, username, timestamp, request, status_code = 4*, bytes]", apache, true},
		{"[ip, user, username, timestamp, request, status_code = 5*, bytes]", apache, false},
		{"[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", apache, true},
		{"[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]", apache, false}, // six fields
		{"[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000, bytes]", apache, true},
		{"[ip, user, username, timestamp, request, status_code = 4* && bytes > 2000, bytes]", apache, false},
		{"[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]", apache, true},
		{"[ip, user, username, timestamp, request, status_code = 5* || status_code = 4*, bytes]", apache, true},
		{"[..., request=*.html*, status_code=4*,]", apache, true},
		{`[ip = %^127\.0\.0\.[1-9]$%, ...]`, apache, true},
		{"[w1=ERROR, w2]", "ERROR message", true},
		{"[w1=ERROR || w1=WARN, w2]", "WARN message", true},
		{"[w1=ERROR || w1=WARN, w2]", "ERROR WARN message", false},
		{"[w1 != ERROR && w1 != WARN, w2]", "INFO message", true},
		{`[type = "REPORT", ...]`, report, true},
	}
	for _, c := range cases {
		p, err := compilePattern(c.pattern)
		if err != nil {
			if c.pattern == "%Status: (timeout|error)%" {
				continue
			}
			t.Errorf("compile %q: %v", c.pattern, err)
			continue
		}
		if got := p.match(c.msg); got != c.want {
			t.Errorf("pattern %q on %q = %v, want %v", c.pattern, c.msg, got, c.want)
		}
	}
}

func TestFilterPatternErrors(t *testing.T) {
	for _, bad := range []string{
		`{ $.a = `,
		`{ $.a = 1`,
		`{ a = 1 }`,
		`{ $.a ~ 1 }`,
		`{ $.a > "x" }`,
		`{ ($.a = 1 }`,
		`{ $.a IS MAYBE }`,
		`{ $.a NOT THERE }`,
		`{ $ = 1 }`,
		`{ $.a[x] = 1 }`,
		`[a, b`,
		`[a, b ~ 1]`,
		`[a, a]`,
		`[]`,
		`"unterminated`,
		`%unterminated`,
		`%(group)%`,
		`%[%`,
		`ERROR ?`,
		`ERROR {`,
	} {
		if _, err := compilePattern(bad); err == nil {
			t.Errorf("pattern %q compiled; want an error", bad)
		}
	}
}
