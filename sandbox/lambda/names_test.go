package lambda

import "testing"

func TestParseFunctionName(t *testing.T) {
	for _, tc := range []struct{ raw, name, qualifier string }{
		{"my-function", "my-function", ""},
		{"my-function:live", "my-function", "live"},
		{"my-function:$LATEST", "my-function", "$LATEST"},
		{"123456789012:function:my-function", "my-function", ""},
		{"123456789012:function:my-function:7", "my-function", "7"},
		{"arn:aws:lambda:us-east-1:123456789012:function:my-function", "my-function", ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:my-function:live", "my-function", "live"},
	} {
		name, q, err := parseFunctionName(tc.raw)
		if err != nil || name != tc.name || q != tc.qualifier {
			t.Errorf("parseFunctionName(%q) = %q, %q, %v; want %q, %q", tc.raw, name, q, err, tc.name, tc.qualifier)
		}
	}
	for _, raw := range []string{"", "has space", "a:b:c", "my-function:", "arn:aws:lambda:us-east-1:123456789012:function:f:a:b", "x:with.dot"} {
		if _, _, err := parseFunctionName(raw); err == nil || err.Code != "ValidationException" {
			t.Errorf("parseFunctionName(%q) accepted or answered %v", raw, err)
		}
	}
}

func TestPaginate(t *testing.T) {
	all := []int{1, 2, 3, 4, 5}
	page, next, err := paginate(all, "", 2)
	if err != nil || len(page) != 2 || next == nil {
		t.Fatalf("first page %v %v %v", page, next, err)
	}
	page, next, _ = paginate(all, *next, 2)
	page2, last, _ := paginate(all, *next, 2)
	if page[0] != 3 || len(page2) != 1 || page2[0] != 5 || last != nil {
		t.Errorf("pages: %v then %v (marker %v)", page, page2, last)
	}
	if _, _, err := paginate(all, "aviary-99", 2); err == nil {
		t.Error("a marker past the end was accepted")
	}
}
