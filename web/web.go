// Package web is Aviary's server: the dashboard (releases, a release's functions, steps, health
// judgements and audit trail), the approval gate's confirmation pages for signed links, the
// admin's approve and rollback buttons, /metrics and /healthz. It reads and writes the same store
// as the CLI, and is one http.Handler: `aviary serve` runs it, and web/lambdaurl runs it as a
// Lambda behind a function URL.
//
// The rule it keeps: a GET never changes anything (chat unfurlers and link scanners follow
// links). A decision is only the POST of a confirmation page, carrying a CSRF token bound to the
// browser's cookie and to the link; the store applies the first decision and records later ones
// as too late.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config is what the server needs.
type Config struct {
	Store store.Store
	// Signer verifies approval links and signs CSRF tokens and sessions; required.
	Signer *links.Signer
	// AdminToken lets a person log in to the dashboard's buttons; empty: no buttons.
	AdminToken string
	// UserHeader names the header an authenticating proxy sets to the signed-in user (such as
	// X-Forwarded-User); when a request has it, it says who decided. It also means the server
	// is behind a proxy, so the client address is taken from X-Forwarded-For.
	UserHeader string
	// PublicURL is the address people reach the server at, when a proxy or a custom domain
	// fronts it (AVIARY_URL): forms posted from it are this server's own.
	PublicURL string
	// Refresh is how often a live release's page reloads itself (default 5 s).
	Refresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives one line per decision and per error (default: discarded).
	Log io.Writer
}

// Server is the handler.
type Server struct {
	cfg  Config
	mux  *http.ServeMux
	tmpl *template.Template
	log  *log.Logger

	publicHost string // PublicURL's host

	mu       sync.Mutex
	failures map[string]*loginFailures // wrong admin tokens, by client address
}

// loginFailures counts an address's wrong admin tokens within a window.
type loginFailures struct {
	n     int
	since time.Time
}

// Wrong admin tokens: after maxLoginFailures from one address within loginWindow, that address
// may not try again until the window has passed.
const (
	maxLoginFailures = 5
	loginWindow      = 15 * time.Minute
)

const (
	csrfCookie    = "aviary_csrf"
	sessionCookie = "aviary_session"
	sessionTTL    = 12 * time.Hour
)

// New makes the server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Signer == nil {
		return nil, errors.New("web: a store and a link signer are required")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), tmpl: t, log: log.New(cfg.Log, "aviary serve: ", log.LstdFlags), failures: map[string]*loginFailures{}}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("web: the public URL %q is not a URL", cfg.PublicURL)
		}
		s.publicHost = u.Host
	}
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.releases)
	s.mux.HandleFunc("GET /releases/{id}", s.release)
	s.mux.HandleFunc("POST /releases/{id}/{action}", s.adminDecide)
	s.mux.HandleFunc("GET /gate/{action}", s.confirm)
	s.mux.HandleFunc("POST /gate/{action}", s.linkDecide)
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	return s, nil
}

// ServeHTTP serves a request, with headers that keep pages out of frames and caches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer") // a link's token must not leak to other sites
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// page is what every template gets.
type page struct {
	Title   string
	Refresh int // seconds; 0: no refresh
	Admin   string
	CSRF    string
	Data    any
	Now     time.Time
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Admin == "" {
		if name, sid, ok := s.session(r); ok {
			p.Admin = name
			p.CSRF = s.sessionCSRF(w, r, sid)
		}
	}
	p.Now = s.cfg.Now()
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, name, p); err != nil {
		s.log.Printf("render %s: %v", name, err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

// problem is the error page: what is wrong and what to do; nothing was changed.
type problem struct {
	Heading string
	Detail  string
	Hint    string
	Release *release.Release
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, p problem) {
	s.render(w, r, status, "error.html", page{Title: p.Heading, Data: p})
}

// ---- the dashboard ----

type listData struct {
	Releases                    []*release.Release
	Service, Environment, Phase string
	Services, Environments      []string
	Phases                      []release.Phase
	Live                        int
}

func (s *Server) releases(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.Filter{Service: q.Get("service"), Environment: q.Get("environment"), Phase: release.Phase(q.Get("phase")), Limit: 200}
	rs, err := s.cfg.Store.ListReleases(r.Context(), f)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	all, err := s.cfg.Store.ListReleases(r.Context(), store.Filter{Limit: 1000})
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	d := listData{Releases: rs, Service: f.Service, Environment: f.Environment, Phase: string(f.Phase),
		Phases: []release.Phase{release.Shifting, release.AwaitingApproval, release.Promoted, release.RolledBack, release.Failed}}
	svc, envs := map[string]bool{}, map[string]bool{}
	for _, x := range all {
		svc[x.Service], envs[x.Environment] = true, true
	}
	d.Services, d.Environments = keys(svc), keys(envs)
	refresh := 0
	for _, x := range rs {
		if !x.Phase.Final() {
			d.Live++
			refresh = s.refreshSeconds()
		}
	}
	s.render(w, r, http.StatusOK, "releases.html", page{Title: "Releases", Refresh: refresh, Data: d})
}

type releaseData struct {
	R      *release.Release
	Events []release.Event
	Gate   *release.Gate
	// Late are decisions that came after the first.
	Late []release.Event
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	rel, evs, ok := s.load(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	d := releaseData{R: rel, Events: evs, Gate: rel.OpenGate()}
	for _, e := range evs {
		if e.Kind == release.EventDecision && e.Data["tooLate"] == true {
			d.Late = append(d.Late, e)
		}
	}
	refresh := 0
	if !rel.Phase.Final() {
		refresh = s.refreshSeconds()
	}
	s.render(w, r, http.StatusOK, "release.html", page{Title: rel.ID, Refresh: refresh, Data: d})
}

func (s *Server) load(w http.ResponseWriter, r *http.Request, id string) (*release.Release, []release.Event, bool) {
	rel, err := s.cfg.Store.GetRelease(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, problem{Heading: "No such release", Detail: fmt.Sprintf("There is no release %q in this store.", id), Hint: "Check the link, or find the release in the list."})
		return nil, nil, false
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return nil, nil, false
	}
	evs, err := s.cfg.Store.Events(r.Context(), id)
	if err != nil {
		s.storeFailed(w, r, err)
		return nil, nil, false
	}
	// Entries the last writer did not get to append are shown all the same.
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Key] = true
	}
	for _, e := range rel.Outbox {
		if !seen[e.Key] {
			evs = append(evs, e)
		}
	}
	return rel, evs, true
}

func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Printf("store: %v", err) // the details (tables, accounts, roles) go to the log only
	s.fail(w, r, http.StatusServiceUnavailable, problem{Heading: "The store cannot be read", Detail: "The server could not reach the store that keeps releases; its log says why.", Hint: "Nothing was changed. Try again in a moment."})
}

func (s *Server) refreshSeconds() int { return max(1, int(s.cfg.Refresh/time.Second)) }

// ---- signed links ----

type confirmData struct {
	R      *release.Release
	Action release.DecisionAction
	Token  string
	CSRF   string
	// ProxyUser is who an authenticating proxy says the person is; empty: they type a name.
	ProxyUser string
	Expires   time.Time
	// Closed says the gate is no longer open: by this decision, or another.
	Closed  string
	Decided *release.Decision
}

// verifyLink checks a link's token for the action in its path. It writes the error page and
// returns false when the link is not good.
func (s *Server) verifyLink(w http.ResponseWriter, r *http.Request, token string) (links.Claims, bool) {
	action := release.DecisionAction(r.PathValue("action"))
	if action != release.Approve && action != release.DecideRollback {
		s.fail(w, r, http.StatusNotFound, problem{Heading: "No such action", Detail: fmt.Sprintf("%q is neither approve nor rollback.", action), Hint: "Nothing was changed. Use the link exactly as it was sent."})
		return links.Claims{}, false
	}
	c, err := s.cfg.Signer.Verify(token, action, s.cfg.Now())
	if err != nil {
		p := problem{Heading: "This link cannot be used", Detail: err.Error() + ".", Hint: "Nothing was changed. Ask for a fresh link, or decide with `aviary approve` or `aviary rollback`."}
		switch {
		case errors.Is(err, links.ErrExpired):
			p.Heading = "This link has expired"
			p.Detail = fmt.Sprintf("It was valid until %s.", c.Expires.UTC().Format(time.RFC1123))
		case errors.Is(err, links.ErrAction):
			p.Heading = "This link is for another action"
			p.Detail = fmt.Sprintf("It was signed to %s, not to %s.", c.Action, action)
		case errors.Is(err, links.ErrSignature), errors.Is(err, links.ErrMalformed):
			p.Heading = "This link is not valid"
		}
		s.log.Printf("refused a %s link from %s: %v", action, s.clientAddr(r), err)
		s.fail(w, r, http.StatusForbidden, p)
		return c, false
	}
	return c, true
}

// confirm shows what a link would do. It changes nothing.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("t")
	c, ok := s.verifyLink(w, r, token)
	if !ok {
		return
	}
	rel, _, ok := s.load(w, r, c.Release)
	if !ok {
		return
	}
	d := confirmData{R: rel, Action: c.Action, Token: token, Expires: c.Expires, ProxyUser: s.proxyUser(r)}
	if closed, first := closedReason(rel, c.Gate); closed != "" {
		d.Closed, d.Decided = closed, first
	} else {
		d.CSRF = s.cfg.Signer.CSRF(s.csrfCookie(w, r), token)
	}
	title := "Approve " + rel.ID
	if c.Action == release.DecideRollback {
		title = "Roll back " + rel.ID
	}
	s.render(w, r, http.StatusOK, "confirm.html", page{Title: title, Data: d})
}

// closedReason says why a release can no longer be decided at gate (1-based; 0: whichever is
// open), or "" when it can.
func closedReason(rel *release.Release, gate int) (string, *release.Decision) {
	if rel.OpenGate() != nil && (gate == 0 || gate == len(rel.Gates)) {
		return "", nil
	}
	if gate >= 1 && gate <= len(rel.Gates) && gate != len(rel.Gates) {
		if d := rel.Gates[gate-1].Decision; d != nil {
			return fmt.Sprintf("The gate this link was made for was already decided: %s by %s via %s at %s. The release has moved on since.", d.Action, d.By, d.Via, d.At.UTC().Format(time.RFC1123)), d
		}
	}
	if g := rel.LastGate(); g != nil && g.Decision != nil {
		d := g.Decision
		return fmt.Sprintf("This release was already decided: %s by %s via %s at %s.", d.Action, d.By, d.Via, d.At.UTC().Format(time.RFC1123)), d
	}
	if rel.Phase.Final() {
		return fmt.Sprintf("This release has ended: %s.", rel.Describe()), nil
	}
	return fmt.Sprintf("This release is not waiting for a decision: it is %s.", rel.Describe()), nil
}

// linkDecide is the POST of a confirmation page: the decision.
func (s *Server) linkDecide(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, problem{Heading: "The form could not be read", Detail: err.Error(), Hint: "Nothing was changed."})
		return
	}
	token := r.PostForm.Get("t")
	c, ok := s.verifyLink(w, r, token)
	if !ok {
		return
	}
	cookie, _ := r.Cookie(csrfCookie)
	if cookie == nil || !s.cfg.Signer.CheckCSRF(r.PostForm.Get("csrf"), cookie.Value, token) {
		s.fail(w, r, http.StatusForbidden, problem{Heading: "This form has expired or did not come from this page",
			Detail: "The confirmation form's security token does not match this browser.", Hint: "Nothing was changed. Open the link again and use the button on its page."})
		return
	}
	by, ok := s.decider(w, r, r.PostForm.Get("name"))
	if !ok {
		return
	}
	s.decide(w, r, c.Release, release.Decision{Action: c.Action, Gate: c.Gate, By: by, Via: release.ViaLink, Reason: truncate(strings.TrimSpace(r.PostForm.Get("reason")), 300)})
}

// decider is who decides: the proxy's user, or the name typed on the page.
func (s *Server) decider(w http.ResponseWriter, r *http.Request, typed string) (string, bool) {
	if u := s.proxyUser(r); u != "" {
		return u, true
	}
	name := strings.TrimSpace(typed)
	if name == "" || len(name) > 100 || strings.ContainsFunc(name, unicode.IsControl) {
		s.fail(w, r, http.StatusBadRequest, problem{Heading: "Say who you are", Detail: "The decision needs your name (up to 100 characters) for the audit trail.", Hint: "Nothing was changed. Go back, type your name and press the button again."})
		return "", false
	}
	return name, true
}

// decide applies a decision through release.Decide and shows what happened.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, id string, d release.Decision) {
	d.Source, d.UserAgent, d.At = s.clientAddr(r), truncate(r.UserAgent(), 300), s.cfg.Now()
	rel, err := release.Decide(r.Context(), s.cfg.Store, id, d)
	var late *release.TooLateError
	switch {
	case errors.As(err, &late):
		s.log.Printf("too late: %s of %s by %s from %s", d.Action, id, d.By, d.Source)
		closed, _ := closedReason(late.Release, d.Gate)
		s.render(w, r, http.StatusConflict, "decided.html", page{Title: "Too late", Data: decidedData{R: late.Release, D: d, Late: true, Closed: closed}})
	case errors.Is(err, release.ErrNotWaiting):
		s.fail(w, r, http.StatusConflict, problem{Heading: "Not waiting for a decision", Detail: err.Error() + ".", Hint: "Nothing was changed.", Release: rel})
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, problem{Heading: "No such release", Detail: fmt.Sprintf("There is no release %q in this store.", id), Hint: "Nothing was changed."})
	case err != nil:
		s.storeFailed(w, r, err)
	default:
		s.log.Printf("%s: %s by %s via %s from %s", id, d.Action, d.By, d.Via, d.Source)
		s.render(w, r, http.StatusOK, "decided.html", page{Title: "Decided", Data: decidedData{R: rel, D: d}})
	}
}

type decidedData struct {
	R      *release.Release
	D      release.Decision
	Late   bool
	Closed string
}

// ---- the admin's buttons ----

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AdminToken == "" {
		s.fail(w, r, http.StatusNotFound, problem{Heading: "No admin login here", Detail: "This server was started without an admin token.", Hint: "Set AVIARY_ADMIN_TOKEN where `aviary serve` runs to turn the dashboard's buttons on."})
		return
	}
	s.render(w, r, http.StatusOK, "login.html", page{Title: "Log in", Data: map[string]string{"CSRF": s.cfg.Signer.CSRF(s.csrfCookie(w, r), "login"), "Next": safeNext(r.URL.Query().Get("next"))}})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AdminToken == "" || !s.sameOrigin(w, r) {
		if s.cfg.AdminToken == "" {
			s.fail(w, r, http.StatusNotFound, problem{Heading: "No admin login here", Detail: "This server was started without an admin token."})
		}
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_ = r.ParseForm()
	cookie, _ := r.Cookie(csrfCookie)
	if cookie == nil || !s.cfg.Signer.CheckCSRF(r.PostForm.Get("csrf"), cookie.Value, "login") {
		s.fail(w, r, http.StatusForbidden, problem{Heading: "This form has expired", Detail: "The login form's security token does not match this browser.", Hint: "Open the login page again."})
		return
	}
	addr := s.clientAddr(r)
	if wait := s.loginBlocked(addr); wait > 0 {
		s.fail(w, r, http.StatusTooManyRequests, problem{Heading: "Too many wrong tokens", Detail: fmt.Sprintf("%d wrong admin tokens came from your address.", maxLoginFailures), Hint: fmt.Sprintf("Try again in %s.", wait.Round(time.Minute))})
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("token")), []byte(s.cfg.AdminToken)) {
		s.loginFailed(addr)
		s.log.Printf("a wrong admin token from %s", addr)
		s.fail(w, r, http.StatusForbidden, problem{Heading: "Wrong admin token", Detail: "The token does not match AVIARY_ADMIN_TOKEN.", Hint: "Nothing was changed."})
		return
	}
	name, ok := s.decider(w, r, r.PostForm.Get("name"))
	if !ok {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.cfg.Signer.Session(name, s.cfg.AdminToken, s.cfg.Now().Add(sessionTTL)), Path: "/", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) session(r *http.Request) (name, id string, ok bool) {
	if s.cfg.AdminToken == "" {
		return "", "", false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", "", false
	}
	return s.cfg.Signer.CheckSession(c.Value, s.cfg.AdminToken, s.cfg.Now())
}

func (s *Server) sessionCSRF(w http.ResponseWriter, r *http.Request, sid string) string {
	return s.cfg.Signer.CSRF(s.csrfCookie(w, r), "session\n"+sid)
}

// adminDecide is a dashboard button: a gate decision, or (away from a gate) a rollback request.
func (s *Server) adminDecide(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(w, r) {
		return
	}
	name, sid, ok := s.session(r)
	if !ok {
		s.fail(w, r, http.StatusForbidden, problem{Heading: "Log in first", Detail: "The buttons are for people holding the admin token.", Hint: "Nothing was changed. Log in, then press the button again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_ = r.ParseForm()
	cookie, _ := r.Cookie(csrfCookie)
	if cookie == nil || !s.cfg.Signer.CheckCSRF(r.PostForm.Get("csrf"), cookie.Value, "session\n"+sid) {
		s.fail(w, r, http.StatusForbidden, problem{Heading: "This form has expired or did not come from this dashboard", Detail: "The button's security token does not match this session.", Hint: "Nothing was changed. Reload the release's page and press the button again."})
		return
	}
	id := r.PathValue("id")
	action := release.DecisionAction(r.PathValue("action"))
	reason := truncate(strings.TrimSpace(r.PostForm.Get("reason")), 300)
	gate, _ := strconv.Atoi(r.PostForm.Get("gate")) // the gate the page showed; 0: none
	switch action {
	case release.Approve:
		s.decide(w, r, id, release.Decision{Action: release.Approve, Gate: gate, By: name, Via: release.ViaDashboard, Reason: reason})
	case release.DecideRollback:
		rel, err := s.cfg.Store.GetRelease(r.Context(), id)
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		if rel.OpenGate() != nil || gate > 0 {
			s.decide(w, r, id, release.Decision{Action: release.DecideRollback, Gate: gate, By: name, Via: release.ViaDashboard, Reason: reason})
			return
		}
		s.requestRollback(w, r, id, name, reason)
	default:
		s.fail(w, r, http.StatusNotFound, problem{Heading: "No such action", Detail: fmt.Sprintf("%q is neither approve nor rollback.", action)})
	}
}

// requestRollback asks the release's driver to roll back a live release, as `aviary rollback`
// does. An ended release is rolled back from the CLI, which acts on aliases itself.
func (s *Server) requestRollback(w http.ResponseWriter, r *http.Request, id, by, reason string) {
	if reason == "" {
		reason = "no reason given"
	}
	src := "dashboard from " + s.clientAddr(r)
	rel, err := release.Change(r.Context(), s.cfg.Store, id, by, src, func(rel *release.Release) (*release.Event, error) {
		if rel.Phase.Final() {
			return nil, fmt.Errorf("%w (%s): roll it back with `aviary rollback %s`, which moves the aliases itself", errEnded, rel.Describe(), rel.ID)
		}
		if rel.Request != nil && rel.Request.Action == release.RequestRollback {
			return nil, nil
		}
		rel.Request = &release.Request{Action: release.RequestRollback, By: by, Reason: reason, At: s.cfg.Now()}
		return &release.Event{Kind: release.EventRequest, Phase: rel.Phase, Message: fmt.Sprintf("rollback requested by %s from the dashboard: %s", by, reason),
			Data: map[string]any{"userAgent": truncate(r.UserAgent(), 300), "source": s.clientAddr(r)}}, nil
	})
	if err != nil {
		if !errors.Is(err, errEnded) {
			s.storeFailed(w, r, err)
			return
		}
		s.fail(w, r, http.StatusConflict, problem{Heading: "Not rolled back", Detail: err.Error(), Hint: "Nothing was changed.", Release: rel})
		return
	}
	s.log.Printf("%s: rollback requested by %s from %s", id, by, s.clientAddr(r))
	http.Redirect(w, r, "/releases/"+url.PathEscape(id), http.StatusSeeOther)
}

// errEnded: a release that has ended cannot be asked to roll back from here.
var errEnded = errors.New("the release has ended")

// ---- helpers ----

// csrfCookie returns the browser's CSRF cookie, setting a fresh one when it has none.
func (s *Server) csrfCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 32 {
		return c.Value
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := hex.EncodeToString(b)
	// Lax, not Strict: a link opened from chat is a cross-site navigation, and a Strict cookie
	// would not come with it, so a fresh one would spoil every other form open in the browser.
	// The form's token, bound to this cookie, is what stops forged posts.
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v}) // later renders of this request see it
	return v
}

// sameOrigin refuses a POST that a browser says came from another site.
func (s *Server) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		s.fail(w, r, http.StatusForbidden, problem{Heading: "Refused a form from another site", Detail: "Decisions are only taken from this server's own pages.", Hint: "Nothing was changed."})
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !(strings.EqualFold(u.Host, r.Host) || s.publicHost != "" && strings.EqualFold(u.Host, s.publicHost)) {
			s.fail(w, r, http.StatusForbidden, problem{Heading: "Refused a form from another site", Detail: fmt.Sprintf("The form came from %s.", o), Hint: "Nothing was changed."})
			return false
		}
	}
	return true
}

func (s *Server) proxyUser(r *http.Request) string {
	if s.cfg.UserHeader == "" {
		return ""
	}
	return truncate(strings.TrimSpace(r.Header.Get(s.cfg.UserHeader)), 100)
}

// clientAddr is where a request came from: behind a proxy, the address the proxy saw, which is
// the last X-Forwarded-For entry (the ones before it are the client's to write).
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.UserHeader != "" {
		if f := r.Header.Values("X-Forwarded-For"); len(f) > 0 {
			all := strings.Split(f[len(f)-1], ",")
			if last := strings.TrimSpace(all[len(all)-1]); last != "" {
				return truncate(last, 64)
			}
		}
	}
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// safeNext keeps a redirect on this server.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\") || strings.ContainsFunc(next, unicode.IsControl) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := s.cfg.Store.ListReleases(ctx, store.Filter{Limit: 1}); err != nil {
		s.log.Printf("healthz: store: %v", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "the store does not answer\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// CloseExpiredGates decides every gate whose deadline has passed as its approval says, through
// release.Decide like every decider, and returns how many it closed. The process driving a
// release does this itself; the server does it too, so that a gate whose driver died (a CI job
// cancelled while it waited) still closes on time, and whoever resumes the release finds the
// decision.
func (s *Server) CloseExpiredGates(ctx context.Context) (int, error) {
	rs, err := s.cfg.Store.ListReleases(ctx, store.Filter{Phase: release.AwaitingApproval, Limit: 1000})
	if err != nil {
		return 0, err
	}
	now, closed := s.cfg.Now(), 0
	for _, r := range rs {
		g := r.OpenGate()
		if g == nil || g.Deadline.IsZero() || now.Before(g.Deadline) {
			continue
		}
		action := release.DecideRollback
		if r.Approval != nil && r.Approval.OnTimeout == string(release.Approve) {
			action = release.Approve
		}
		_, err := release.Decide(ctx, s.cfg.Store, r.ID, release.Decision{Action: action, By: "aviary (gate timeout)", Via: release.ViaTimeout,
			Source: "aviary serve", Reason: fmt.Sprintf("nobody decided within %s; on_timeout: %s", g.Deadline.Sub(g.Opened).Round(time.Second), action), At: now})
		var late *release.TooLateError
		switch {
		case err == nil:
			closed++
			s.log.Printf("%s: the gate timed out; decided %s", r.ID, action)
		case errors.As(err, &late):
		default:
			return closed, err
		}
	}
	return closed, nil
}

// Run closes expired gates every interval until ctx ends.
func (s *Server) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.CloseExpiredGates(ctx); err != nil && ctx.Err() == nil {
			s.log.Printf("closing expired gates: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// loginBlocked says how long addr must wait before trying a token again (0: it may try now).
func (s *Server) loginBlocked(addr string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[addr]
	if f == nil {
		return 0
	}
	left := f.since.Add(loginWindow).Sub(s.cfg.Now())
	if left <= 0 {
		delete(s.failures, addr)
		return 0
	}
	if f.n < maxLoginFailures {
		return 0
	}
	return left
}

func (s *Server) loginFailed(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	for a, f := range s.failures { // forget old windows, so that the map stays small
		if now.Sub(f.since) > loginWindow {
			delete(s.failures, a)
		}
	}
	f := s.failures[addr]
	if f == nil {
		f = &loginFailures{since: now}
		s.failures[addr] = f
	}
	f.n++
}
