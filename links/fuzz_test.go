package links_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
)

// FuzzVerify feeds Verify arbitrary tokens, among them links signed with the fuzz's secret and
// their mutations: it must not panic, must refuse with one of its own errors, and must accept
// only what was signed (a mutation that verifies must carry the same claims as some signed
// link, which the signature makes impossible to find). Run it longer with
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 10m ./links
func FuzzVerify(f *testing.F) {
	s, err := links.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	signed := map[string]bool{}
	for _, c := range []links.Claims{
		{Release: "shop-prod-42", Gate: 1, Action: release.Approve, Expires: now.Add(time.Hour), Nonce: "n1"},
		{Release: "shop-prod-42", Gate: 2, Action: release.DecideRollback, Expires: now.Add(time.Hour), Nonce: "n2"},
		{Release: "shop-prod-43", Gate: 1, Action: release.Approve, Expires: now.Add(-time.Hour), Nonce: "n3"},
	} {
		tok := s.Sign(c)
		signed[tok] = true
		f.Add(tok)
	}
	for _, seed := range []string{"", ".", "..", "e30.e30", "djIKYQoxCmFwcHJvdmUKMQpu.", "%%%.***", strings.Repeat("A", 300) + "." + strings.Repeat("B", 43)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.Verify(tok, "", now)
		switch {
		case err == nil:
			if !signed[s.Sign(c)] && !signed[tok] {
				t.Fatalf("Verify accepted %q as %+v, which was never signed", tok, c)
			}
		case !errors.Is(err, links.ErrMalformed) && !errors.Is(err, links.ErrSignature) && !errors.Is(err, links.ErrExpired):
			t.Fatalf("Verify(%q): %v is none of the package's errors", tok, err)
		}
	})
}

// FuzzSignVerify signs arbitrary claims (an empty nonce gets a fresh one): a link verifies as exactly the claims signed, or (when
// a field holds the separator) is refused as malformed; it never verifies as other claims. Run
// it longer with
//
//	go test -run '^$' -fuzz '^FuzzSignVerify$' -fuzztime 10m ./links
func FuzzSignVerify(f *testing.F) {
	s, err := links.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("shop-prod-42", 1, true, int64(3600), "nonce")
	f.Add("a\nb", 2, false, int64(60), "x\ny")
	f.Add("", 0, true, int64(-1), "")
	f.Add("ünïcode ‮", 1<<40, false, int64(1)<<40, ".")
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, id string, gate int, approve bool, ttl int64, nonce string) {
		action := release.DecideRollback
		if approve {
			action = release.Approve
		}
		ttl = ttl % (100 * 365 * 24 * 3600) // within a century, so that Unix seconds do not overflow
		want := links.Claims{Release: id, Gate: gate, Action: action, Expires: now.Add(time.Duration(ttl) * time.Second), Nonce: nonce}
		got, err := s.Verify(s.Sign(want), action, now)
		clean := !strings.Contains(id, "\n") && !strings.Contains(nonce, "\n") && gate >= 1
		switch {
		case err == nil:
			if !clean || got.Release != want.Release || got.Gate != want.Gate || got.Action != want.Action || (nonce != "" && got.Nonce != nonce) || got.Nonce == "" || got.Expires.Unix() != want.Expires.Unix() {
				t.Fatalf("signed %+v, verified as %+v", want, got)
			}
		case errors.Is(err, links.ErrExpired):
			if ttl > 0 {
				t.Fatalf("signed %+v for %ds, Verify: %v", want, ttl, err)
			}
		case errors.Is(err, links.ErrMalformed):
			if clean {
				t.Fatalf("signed %+v, Verify: %v", want, err)
			}
		default:
			t.Fatalf("signed %+v, Verify: %v", want, err)
		}
	})
}
