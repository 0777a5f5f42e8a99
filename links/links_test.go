package links_test

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
)

func signer(t *testing.T, secret string) *links.Signer {
	t.Helper()
	s, err := links.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignAndVerify(t *testing.T) {
	s := signer(t, "0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	tok := s.Sign(links.Claims{Release: "shop-prod-42", Gate: 1, Action: release.Approve, Expires: now.Add(time.Hour)})
	c, err := s.Verify(tok, release.Approve, now)
	if err != nil || c.Release != "shop-prod-42" || c.Action != release.Approve || c.Nonce == "" {
		t.Fatalf("%+v %v", c, err)
	}
	if tok2 := s.Sign(links.Claims{Release: "shop-prod-42", Gate: 1, Action: release.Approve, Expires: now.Add(time.Hour)}); tok2 == tok {
		t.Error("two links are the same: no nonce")
	}

	// Every way a link can be wrong is refused, with its own reason.
	payload, sig, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	forged := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), "shop-prod-42", "shop-prod-43", 1))) + "." + sig
	flipped := []byte(tok)
	if flipped[len(flipped)-2] == 'A' {
		flipped[len(flipped)-2] = 'B'
	} else {
		flipped[len(flipped)-2] = 'A'
	}
	other := signer(t, "another secret of enough length!")
	for name, tc := range map[string]struct {
		token  string
		action release.DecisionAction
		at     time.Time
		want   error
	}{
		"expired":            {tok, release.Approve, now.Add(time.Hour), links.ErrExpired},
		"wrong action":       {tok, release.DecideRollback, now, links.ErrAction},
		"payload altered":    {forged, release.Approve, now, links.ErrSignature},
		"signature altered":  {string(flipped), release.Approve, now, links.ErrSignature},
		"another secret":     {other.Sign(links.Claims{Release: "shop-prod-42", Gate: 1, Action: release.Approve, Expires: now.Add(time.Hour)}), release.Approve, now, links.ErrSignature},
		"unsigned":           {payload, release.Approve, now, links.ErrMalformed},
		"empty":              {"", release.Approve, now, links.ErrMalformed},
		"garbage":            {"%%%.@@@", release.Approve, now, links.ErrMalformed},
		"signature stripped": {payload + ".", release.Approve, now, links.ErrSignature},
	} {
		if _, err := s.Verify(tc.token, tc.action, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func TestURL(t *testing.T) {
	s := signer(t, "0123456789abcdef0123456789abcdef")
	now := time.Now()
	u, err := url.Parse(s.URL("https://gate.example.com/", "r-1", 2, release.DecideRollback, now.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/gate/rollback" {
		t.Errorf("path %q", u.Path)
	}
	if c, err := s.Verify(u.Query().Get("t"), release.DecideRollback, now); err != nil || c.Release != "r-1" || c.Gate != 2 {
		t.Errorf("%+v %v", c, err)
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := links.NewSigner([]byte("short")); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("got %v", err)
	}
}

func TestCSRFAndSession(t *testing.T) {
	s := signer(t, "0123456789abcdef0123456789abcdef")
	tok := s.CSRF("cookie-1", "link-a")
	if !s.CheckCSRF(tok, "cookie-1", "link-a") {
		t.Error("a good token refused")
	}
	for name, c := range map[string][3]string{
		"other cookie": {tok, "cookie-2", "link-a"}, "other link": {tok, "cookie-1", "link-b"},
		"no cookie": {tok, "", "link-a"}, "no token": {"", "cookie-1", "link-a"},
	} {
		if s.CheckCSRF(c[0], c[1], c[2]) {
			t.Errorf("%s accepted", name)
		}
	}
	now := time.Now()
	v := s.Session("alice", "token-1", now.Add(time.Hour))
	if name, id, ok := s.CheckSession(v, "token-1", now); !ok || name != "alice" || id == "" {
		t.Errorf("session %q %q %v", name, id, ok)
	}
	if _, _, ok := s.CheckSession(v, "token-2", now); ok {
		t.Error("a session outlived its admin token")
	}
	if _, _, ok := s.CheckSession(v, "token-1", now.Add(2*time.Hour)); ok {
		t.Error("an expired session accepted")
	}
	altered := []byte(v)
	altered[3] ^= 1
	if _, _, ok := s.CheckSession(string(altered), "token-1", now); ok {
		t.Error("an altered session accepted")
	}
	if _, _, ok := signer(t, "another secret of enough length!").CheckSession(v, "token-1", now); ok {
		t.Error("a session from another secret accepted")
	}
}
