package cloudfront

import (
	"encoding/xml"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

func TestReplicas(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newReplicas(time.Hour, func() time.Time { return now })
	const v1, v2 = "arn:aws:lambda:us-east-1:000000000000:function:f:1", "arn:aws:lambda:us-east-1:000000000000:function:f:2"
	check := func(step string, want1, want2 bool) {
		t.Helper()
		if got1, got2 := r.replicated(v1), r.replicated(v2); got1 != want1 || got2 != want2 {
			t.Fatalf("%s: replicated(1)=%v replicated(2)=%v, want %v %v", step, got1, got2, want1, want2)
		}
	}
	check("nothing associated", false, false)
	r.set("A", []string{v1}, true)
	r.set("B", []string{v1, v2}, true)
	check("A holds 1, B holds 1 and 2", true, true)
	r.set("B", nil, true)
	check("B let go: A still holds 1, 2 released now", true, true)
	now = now.Add(time.Hour)
	check("an hour after 2 was released", true, false)
	r.add("A", []string{v2})
	r.set("A", []string{v1}, false)
	check("2 held only while validated is dropped without a grace period", true, false)
	r.set("A", nil, true)
	now = now.Add(59 * time.Minute)
	check("59 minutes after 1 was released", true, false)
	if got := len(r.pending()); got != 1 {
		t.Fatalf("pending() has %d versions, want 1", got)
	}
	now = now.Add(time.Minute)
	check("an hour after 1 was released", false, false)
	if got := len(r.pending()); got != 0 {
		t.Fatalf("pending() has %d versions after the delay, want 0", got)
	}
}

func TestCheckQuantities(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		code string
	}{
		{`<A><Quantity>0</Quantity></A>`, ""},
		{`<A><Quantity>1</Quantity><Items><X/></Items></A>`, ""},
		{`<A><Quantity>1</Quantity></A>`, "InconsistentQuantities"},
		{`<A><B><Quantity>2</Quantity><Items><X/></Items></B></A>`, "InconsistentQuantities"},
		{`<A><Quantity>many</Quantity></A>`, "InconsistentQuantities"},
	} {
		var p configPayload
		if err := xmlUnmarshal(tc.xml, &p); err != nil {
			t.Fatal(err)
		}
		err := checkQuantities(&node{Nodes: p.Nodes})
		if got := codeOf(err); got != tc.code {
			t.Errorf("%s: %q, want %q", tc.xml, got, tc.code)
		}
	}
}

func xmlUnmarshal(s string, v any) error { return xml.Unmarshal([]byte("<R>"+s+"</R>"), v) }

func codeOf(err *protocol.Error) string {
	if err == nil {
		return ""
	}
	return err.Code
}
