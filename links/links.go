// Package links signs and verifies approval links: a link names a release, an action (approve or
// rollback) and an expiry, signed with HMAC-SHA256 under a secret only the deploying side and
// the gate server hold. A link only opens a confirmation page; the decision is the POST from
// that page (see package web).
package links

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// MinSecret is the shortest secret accepted, in bytes.
const MinSecret = 16

// Errors Verify returns. They say what is wrong without echoing anything secret.
var (
	ErrMalformed = errors.New("the link is malformed or incomplete")
	ErrSignature = errors.New("the link's signature does not match: it was altered, or signed with another secret")
	ErrExpired   = errors.New("the link has expired")
	ErrAction    = errors.New("the link was made for another action")
)

// Claims are what a link says.
type Claims struct {
	Release string
	// Gate is the gate the link decides (1-based, as the release counts its gates): a link
	// made for one gate is too late at any later one.
	Gate    int
	Action  release.DecisionAction
	Expires time.Time
	// Nonce makes every link distinct.
	Nonce string
}

// Signer signs and verifies links, and derives the server's other keys from the same secret.
type Signer struct {
	link, csrf, session []byte
}

// NewSigner makes a signer from a secret of at least MinSecret bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecret {
		return nil, fmt.Errorf("the link secret is %d bytes; use at least %d random bytes (for example: openssl rand -hex 32)", len(secret), MinSecret)
	}
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("aviary/" + purpose))
		return m.Sum(nil)
	}
	return &Signer{link: derive("link/v1"), csrf: derive("csrf/v1"), session: derive("session/v1")}, nil
}

// SecretFromEnv reads the secret from AVIARY_LINK_SECRET, or from the file AVIARY_LINK_SECRET_FILE
// names (trailing newlines trimmed). It returns nil, nil when neither is set.
func SecretFromEnv() ([]byte, error) {
	if s := os.Getenv("AVIARY_LINK_SECRET"); s != "" {
		return []byte(s), nil
	}
	if f := os.Getenv("AVIARY_LINK_SECRET_FILE"); f != "" {
		return ReadSecretFile(f)
	}
	return nil, nil
}

// ReadSecretFile reads a secret from a file, trailing newlines trimmed.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the link secret: %w", err)
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

// Sign makes a link token for c (a fresh nonce when c has none).
func (s *Signer) Sign(c Claims) string {
	if c.Nonce == "" {
		b := make([]byte, 9)
		_, _ = rand.Read(b)
		c.Nonce = hex.EncodeToString(b)
	}
	payload := strings.Join([]string{"v2", c.Release, strconv.Itoa(c.Gate), string(c.Action), strconv.FormatInt(c.Expires.Unix(), 10), c.Nonce}, "\n")
	return b64(payload) + "." + b64(string(mac(s.link, payload)))
}

// Verify checks a token's signature (in constant time), its expiry at now and, when action is
// set, that it was made for that action.
func (s *Signer) Verify(token string, action release.DecisionAction, now time.Time) (Claims, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, ErrMalformed
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(got, mac(s.link, string(payload))) {
		return Claims{}, ErrSignature
	}
	f := strings.Split(string(payload), "\n")
	if len(f) != 6 || f[0] != "v2" {
		return Claims{}, ErrMalformed
	}
	gate, err1 := strconv.Atoi(f[2])
	exp, err2 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || gate < 1 {
		return Claims{}, ErrMalformed
	}
	c := Claims{Release: f[1], Gate: gate, Action: release.DecisionAction(f[3]), Expires: time.Unix(exp, 0), Nonce: f[5]}
	if c.Action != release.Approve && c.Action != release.DecideRollback {
		return c, ErrMalformed
	}
	if action != "" && c.Action != action {
		return c, ErrAction
	}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

// URL is the link to the confirmation page of action at gate (1-based) of release id, at the
// gate server base.
func (s *Signer) URL(base, id string, gate int, action release.DecisionAction, expires time.Time) string {
	t := s.Sign(Claims{Release: id, Gate: gate, Action: action, Expires: expires})
	return strings.TrimRight(base, "/") + "/gate/" + string(action) + "?t=" + url.QueryEscape(t)
}

// CSRF is the token a form must carry: bound to the browser's cookie value and to what the form
// acts on (a link token, or a session).
func (s *Signer) CSRF(cookie, bound string) string {
	return b64(string(mac(s.csrf, cookie+"\n"+bound)))
}

// CheckCSRF compares a form's token with the expected one in constant time.
func (s *Signer) CheckCSRF(token, cookie, bound string) bool {
	if cookie == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(token), []byte(s.CSRF(cookie, bound)))
}

// Session makes an admin session cookie value for name until expires, bound to the admin token
// it was opened with: changing the token ends every session.
func (s *Signer) Session(name, token string, expires time.Time) string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	payload := strings.Join([]string{"s1", name, strconv.FormatInt(expires.Unix(), 10), hex.EncodeToString(b)}, "\n")
	return b64(payload) + "." + b64(string(mac(s.sessionKey(token), payload)))
}

func (s *Signer) sessionKey(token string) []byte { return mac(s.session, "admin token\n"+token) }

// CheckSession returns the name of a valid, unexpired session opened with token, and its id
// (for CSRF binding).
func (s *Signer) CheckSession(v, token string, now time.Time) (name, id string, ok bool) {
	p, sig, found := strings.Cut(v, ".")
	if !found {
		return "", "", false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(got, mac(s.sessionKey(token), string(payload))) {
		return "", "", false
	}
	f := strings.Split(string(payload), "\n")
	if len(f) != 4 || f[0] != "s1" {
		return "", "", false
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", "", false
	}
	return f[1], f[3], true
}

func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
