// Package web is Aviary's server: the dashboard (releases, a release's functions, steps, health
// judgements and audit trail), the approval gate's confirmation pages for signed links, the
// admin's approve and rollback buttons, /metrics and /healthz. It reads and writes the same store
// as the CLI, and is one http.Handler: `aviary serve` runs it, and web/lambdaurl runs it as a
// Lambda behind a function URL.
//
// The rule it keeps: a GET never changes anything (chat unfurlers and link scanners follow
// links). A decision is only the POST of a confirmation page, carrying a CSRF token bound to the
// browser's cookie and to the link; the store applies the first decision and records later ones
// as too late (once per link and decider: see lateOnce).
//
// What it keeps in the store rather than in memory, so that several servers sharing one store
// (several instances of the gate's Lambda) behave as one: decisions, the end of an admin session
// at log out, and the numbers /metrics reports (counted from the whole store at each scrape).
// Only the count of wrong admin tokens is kept per process.
//
// Text from outside (names, reasons, user agents, addresses) goes through internal/textsafe:
// names and reasons with control or format characters are refused, and the rest is escaped
// before it reaches the audit trail or the log.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aviary-deploy/aviary/internal/textsafe"
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
	// TrustedProxies are the addresses of the proxies in front of the server (AVIARY_TRUSTED_PROXIES,
	// --trusted-proxy). When set, UserHeader and X-Forwarded-For are believed only from a request
	// that comes from one of them, and the client is the nearest address in X-Forwarded-For that
	// is not one of them. When empty and UserHeader is set, both are believed from any client
	// that connects, and New logs a warning saying so.
	TrustedProxies []netip.Prefix
	// PublicURL is the address people reach the server at, when a proxy or a custom domain
	// fronts it (AVIARY_URL): forms posted from it are this server's own.
	PublicURL string
	// Refresh is how often a live release's page reloads itself (default 5 s).
	Refresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives one record per decision and per error (default: discarded).
	Log *slog.Logger
	// Nudge, if set, is called after a decision or a rollback request is recorded on a release
	// the environment's controller drives (Release.Controller), so that the controller acts on
	// it at once rather than at its next scheduled tick (`aviary serve --controller-function`,
	// AVIARY_CONTROLLER_FUNCTION for the gate's Lambda: controller.Nudge). A failed nudge is
	// logged as a warning and changes nothing else: the schedule ticks anyway.
	Nudge func(ctx context.Context, r *release.Release, reason string) error
}

// Server is the handler.
type Server struct {
	cfg  Config
	mux  *http.ServeMux
	tmpl *template.Template
	log  *slog.Logger

	publicHost string // PublicURL's host

	mu       sync.Mutex
	failures map[string]*loginFailures // wrong admin tokens, by client address
	all      loginFailures             // wrong admin tokens from every address
}

// loginFailures counts an address's wrong admin tokens within a window.
type loginFailures struct {
	n     int
	since time.Time
}

// Wrong admin tokens: after maxLoginFailures from one address within loginWindow, that address
// may not try again until the window has passed; after maxLoginFailuresAll from all addresses
// together (a guesser with many addresses, or one that forges X-Forwarded-For), nobody may until
// that window has passed. The counts are kept by each server process: several gate Lambdas
// each keep their own, so reserved concurrency bounds the guesses too. Signed links and the CLI
// keep working while the login is closed.
const (
	maxLoginFailures    = 5
	maxLoginFailuresAll = 50
	loginWindow         = 15 * time.Minute
)

// Limits on text from the forms.
const (
	maxName   = 100 // a decider's name, bytes
	maxReason = 300 // a decision's reason, bytes
	maxAgent  = 300 // a user agent, bytes
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
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), tmpl: t, log: cfg.Log, failures: map[string]*loginFailures{}}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("web: the public URL %q is not a URL", cfg.PublicURL)
		}
		s.publicHost = u.Host
	}
	if cfg.UserHeader != "" && len(cfg.TrustedProxies) == 0 {
		cfg.Log.Warn("the user header and X-Forwarded-For are believed from any client that connects: anyone who can reach this server can claim to be anyone and come from anywhere; list the proxies in front of it (--trusted-proxy, AVIARY_TRUSTED_PROXIES), or make sure only they can reach it",
			"header", cfg.UserHeader)
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
	s.mux.Handle("GET /metrics", metricsHandler(newCollector(cfg.Store, cfg.Log), cfg.Log))
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
		s.log.Error("render", "page", name, "err", err)
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
	s.log.Error("store", "err", err) // the details (tables, accounts, roles) go to the log only
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
		s.log.Warn("refused a "+string(action)+" link", "from", s.clientAddr(r), "err", err) // action is approve or rollback
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
	reason, ok := s.reason(w, r)
	if !ok {
		return
	}
	s.decide(w, r, c.Release, "link "+c.Nonce, release.Decision{Action: c.Action, Gate: c.Gate, By: by, Via: release.ViaLink, Reason: reason})
}

// reason is the form's reason for a decision, without the spaces around it and cut to maxReason
// bytes on a character boundary. A reason with a control or format character (an escape
// sequence that would clear the terminal of whoever runs `aviary status`, a CR or LF that would
// forge lines in a CI log, a right-to-left override) is refused: a text field cannot hold one
// typed by hand.
func (s *Server) reason(w http.ResponseWriter, r *http.Request) (string, bool) {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if strings.ContainsFunc(reason, textsafe.Dangerous) || !utf8.ValidString(reason) {
		s.fail(w, r, http.StatusBadRequest, problem{Heading: "The reason cannot be recorded", Detail: "It contains a control character or an invisible formatting character.", Hint: "Nothing was changed. Go back, type the reason again as plain text and press the button again."})
		return "", false
	}
	return textsafe.Cut(reason, maxReason), true
}

// decider is who decides: the proxy's user, or the name typed on the page.
func (s *Server) decider(w http.ResponseWriter, r *http.Request, typed string) (string, bool) {
	if u := s.proxyUser(r); u != "" {
		if err := textsafe.Name(u, maxName); err != nil {
			s.log.Warn("refused the proxy's user", "header", s.cfg.UserHeader, "user", textsafe.Clean(textsafe.Cut(u, maxName)), "err", err)
			s.fail(w, r, http.StatusBadRequest, problem{Heading: "Your proxy's user name cannot be recorded", Detail: fmt.Sprintf("The name in %s %s.", s.cfg.UserHeader, err), Hint: "Nothing was changed. Ask whoever runs the proxy."})
			return "", false
		}
		return u, true
	}
	// Names are checked by textsafe.Name: no control characters, and no format characters (a
	// right-to-left override or a zero-width space can make one name look like another).
	name := strings.TrimSpace(typed)
	if err := textsafe.Name(name, maxName); err != nil {
		s.fail(w, r, http.StatusBadRequest, problem{Heading: "Say who you are", Detail: fmt.Sprintf("The decision needs your name (up to %d bytes, plain text) for the audit trail; the name given %s.", maxName, err), Hint: "Nothing was changed. Go back, type your name and press the button again."})
		return "", false
	}
	return name, true
}

// decide applies a decision through release.Decide and shows what happened. from names what
// the decision came through (a link's nonce, an admin session's id), to bound the "too late"
// entries a used form can add to the audit trail (see lateOnce).
func (s *Server) decide(w http.ResponseWriter, r *http.Request, id, from string, d release.Decision) {
	d.Source, d.UserAgent, d.At = s.clientAddr(r), userAgent(r), s.cfg.Now()
	rel, err := release.Decide(r.Context(), &lateOnce{Store: s.cfg.Store, from: from, by: d.By}, id, d)
	var late *release.TooLateError
	switch {
	case errors.As(err, &late):
		s.log.Info("too late", "release", textsafe.Clean(id), "action", d.Action, "by", textsafe.Clean(d.By), "from", d.Source)
		closed, _ := closedReason(late.Release, d.Gate)
		s.render(w, r, http.StatusConflict, "decided.html", page{Title: "Too late", Data: decidedData{R: late.Release, D: d, Late: true, Closed: closed}})
	case errors.Is(err, release.ErrNotWaiting):
		s.fail(w, r, http.StatusConflict, problem{Heading: "Not waiting for a decision", Detail: err.Error() + ".", Hint: "Nothing was changed.", Release: rel})
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, problem{Heading: "No such release", Detail: fmt.Sprintf("There is no release %q in this store.", id), Hint: "Nothing was changed."})
	case err != nil:
		s.storeFailed(w, r, err)
	default:
		s.log.Info("decided", "release", textsafe.Clean(id), "action", d.Action, "by", textsafe.Clean(d.By), "via", d.Via, "from", d.Source)
		s.nudge(r.Context(), rel, "decision")
		s.render(w, r, http.StatusOK, "decided.html", page{Title: "Decided", Data: decidedData{R: rel, D: d}})
	}
}

// lateOnce is the store a decision is made through. A decision that comes too late changes
// nothing but adds an entry to the audit trail; a used link's form could be posted again and
// again, each adding one. lateOnce bounds them in the store itself, so that it holds for every
// server sharing it (several gate Lambdas): the entry's key is made of the form's origin (the
// link, or the admin session), the gate and the decider, so a repeat adds nothing; and at most
// maxLatePerOrigin deciders are recorded per origin, since the name on a link's page is typed
// and a replayer could change it each time.
type lateOnce struct {
	store.Store
	from, by string
}

const maxLatePerOrigin = 5

func (l *lateOnce) AppendEvent(ctx context.Context, e *release.Event) error {
	if e.Data["tooLate"] != true || l.from == "" {
		return l.Store.AppendEvent(ctx, e)
	}
	origin := digest(l.from)
	evs, err := l.Store.Events(ctx, e.ReleaseID)
	if err != nil {
		return err
	}
	key := e.ReleaseID + "/late/" + digest(l.from+"\n"+fmt.Sprint(e.Data["gate"], e.Data["action"])+"\n"+l.by)
	n := 0
	for _, old := range evs {
		if old.Key == key {
			e.Seq = old.Seq
			return nil
		}
		if old.Data["origin"] == origin {
			n++
		}
	}
	if n >= maxLatePerOrigin {
		return nil // enough said through this link
	}
	e.Key = key
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	e.Data["origin"] = origin
	return l.Store.AppendEvent(ctx, e)
}

// digest is a short, stable name for s that does not reveal it.
func digest(s string) string {
	h := sha256.Sum256([]byte("aviary/late\n" + s))
	return hex.EncodeToString(h[:8])
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
	if wait, everyone := s.loginBlocked(addr); wait > 0 {
		detail := fmt.Sprintf("%d wrong admin tokens came from your address.", maxLoginFailures)
		if everyone {
			detail = fmt.Sprintf("%d wrong admin tokens came to this server: logging in is closed for everyone for a while.", maxLoginFailuresAll)
		}
		s.fail(w, r, http.StatusTooManyRequests, problem{Heading: "Too many wrong tokens", Detail: detail, Hint: fmt.Sprintf("Try again in %s. Signed links and the CLI still decide meanwhile.", wait.Round(time.Minute))})
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("token")), []byte(s.cfg.AdminToken)) {
		s.loginFailed(addr)
		s.log.Warn("a wrong admin token", "from", addr)
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

// logout ends the session: in the store, so that its cookie, even one captured before, no longer
// works on any server sharing the store; and in the browser. Like every POST that changes
// something it needs the page's token, so another site cannot log a person out.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(w, r) {
		return
	}
	// The cookie's signature, not the store, says whether there is a session to end: a store
	// that cannot be read must not turn a log out into a cleared cookie whose copies live on.
	if _, sid, ok := s.signedSession(r); ok {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		_ = r.ParseForm()
		cookie, _ := r.Cookie(csrfCookie)
		if cookie == nil || !s.cfg.Signer.CheckCSRF(r.PostForm.Get("csrf"), cookie.Value, "session\n"+sid) {
			s.fail(w, r, http.StatusForbidden, problem{Heading: "This form has expired or did not come from this dashboard", Detail: "The log out button's security token does not match this session.", Hint: "You are still logged in. Reload the page and press Log out again."})
			return
		}
		// A session lives sessionTTL at most, so its revocation is not needed after that.
		if err := s.cfg.Store.RevokeSession(r.Context(), sid, s.cfg.Now().Add(sessionTTL)); err != nil {
			s.log.Error("store: revoke a session", "err", err)
			s.fail(w, r, http.StatusServiceUnavailable, problem{Heading: "Not logged out", Detail: "The server could not record the end of your session in the store; its log says why.", Hint: "You are still logged in. Try again in a moment."})
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// session is the admin session the request's cookie holds: signed with the admin token, not
// expired, and not ended by a log out (a store that cannot be read counts as ended).
func (s *Server) session(r *http.Request) (name, id string, ok bool) {
	name, id, ok = s.signedSession(r)
	if !ok {
		return "", "", false
	}
	revoked, err := s.cfg.Store.SessionRevoked(r.Context(), id)
	if err != nil {
		s.log.Error("store: read a session", "err", err)
		return "", "", false
	}
	if revoked {
		return "", "", false
	}
	return name, id, true
}

// signedSession is the session the request's cookie holds, by its signature and expiry alone.
func (s *Server) signedSession(r *http.Request) (name, id string, ok bool) {
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
	reason, ok := s.reason(w, r)
	if !ok {
		return
	}
	gate, _ := strconv.Atoi(r.PostForm.Get("gate")) // the gate the page showed; 0: none
	from := "session " + sid
	switch action {
	case release.Approve:
		s.decide(w, r, id, from, release.Decision{Action: release.Approve, Gate: gate, By: name, Via: release.ViaDashboard, Reason: reason})
	case release.DecideRollback:
		rel, err := s.cfg.Store.GetRelease(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, http.StatusNotFound, problem{Heading: "No such release", Detail: fmt.Sprintf("There is no release %q in this store.", id), Hint: "Nothing was changed."})
			return
		}
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		if rel.OpenGate() != nil || gate > 0 {
			s.decide(w, r, id, from, release.Decision{Action: release.DecideRollback, Gate: gate, By: name, Via: release.ViaDashboard, Reason: reason})
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
	rel, _, err := release.AskRollback(r.Context(), s.cfg.Store, id, by, src, reason, map[string]any{"userAgent": userAgent(r), "source": s.clientAddr(r), "via": "dashboard"})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, http.StatusNotFound, problem{Heading: "No such release", Detail: fmt.Sprintf("There is no release %q in this store.", id), Hint: "Nothing was changed."})
			return
		}
		if !errors.Is(err, release.ErrEnded) {
			s.storeFailed(w, r, err)
			return
		}
		s.fail(w, r, http.StatusConflict, problem{Heading: "Not rolled back", Detail: fmt.Sprintf("%v: roll it back with `aviary rollback %s`, which moves the aliases itself", err, id), Hint: "Nothing was changed.", Release: rel})
		return
	}
	s.log.Info("rollback requested", "release", textsafe.Clean(id), "by", textsafe.Clean(by), "from", s.clientAddr(r))
	s.nudge(r.Context(), rel, "rollback requested")
	http.Redirect(w, r, "/releases/"+url.PathEscape(id), http.StatusSeeOther)
}

// ---- helpers ----

// nudge asks the controller for a tick at once when it drives rel (Config.Nudge); a failure is a
// warning in the log, since the controller's schedule picks the decision up anyway.
func (s *Server) nudge(ctx context.Context, rel *release.Release, reason string) {
	if s.cfg.Nudge == nil || rel == nil || !rel.Controller || rel.Phase.Final() {
		return
	}
	if err := s.cfg.Nudge(ctx, rel, reason); err != nil {
		s.log.Warn("the controller was not nudged; its schedule picks the release up at its next tick", "release", textsafe.Clean(rel.ID), "err", err.Error())
		return
	}
	s.log.Info("nudged the controller", "release", textsafe.Clean(rel.ID), "reason", reason)
}

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

// proxyUser is who the authenticating proxy says the person is ("" when the request did not
// come through a proxy this server believes). decider checks the name.
func (s *Server) proxyUser(r *http.Request) string {
	if s.cfg.UserHeader == "" || !s.fromTrustedProxy(r) {
		return ""
	}
	return strings.TrimSpace(r.Header.Get(s.cfg.UserHeader))
}

// peer is the address that connected (for a Lambda, the function URL's source IP).
func peer(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// fromTrustedProxy says whether the request came through a proxy whose headers this server
// believes: with TrustedProxies, one of them connected; without, any request is believed when
// UserHeader is set (New warns about it).
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	if s.cfg.UserHeader == "" && len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	if len(s.cfg.TrustedProxies) == 0 {
		return true
	}
	return s.trusted(peer(r))
}

func (s *Server) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is where a request came from. Behind a proxy this server believes, it is read from
// X-Forwarded-For, from the right: each proxy appends the address it saw, and the entries
// before the nearest proxy's are the client's to write. With TrustedProxies, the client is the
// rightmost entry that is not a trusted proxy; without, it is the last entry.
func (s *Server) clientAddr(r *http.Request) string {
	if !s.fromTrustedProxy(r) {
		return peer(r)
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	addr := peer(r)
	for i := len(hops) - 1; i >= 0; i-- {
		if hops[i] == "" {
			break
		}
		addr = hops[i]
		if len(s.cfg.TrustedProxies) == 0 || !s.trusted(addr) {
			break
		}
	}
	return textsafe.Clean(textsafe.Cut(addr, 64))
}

// ParseProxies reads a list of trusted proxies: addresses (192.0.2.1, 2001:db8::1) or ranges in
// CIDR notation (10.0.0.0/8).
func ParseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR range (such as 10.0.0.0/8)", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// userAgent is the request's user agent as the audit trail keeps it: control and format
// characters escaped, cut to maxAgent bytes.
func userAgent(r *http.Request) string {
	return textsafe.Cut(textsafe.Clean(r.UserAgent()), maxAgent)
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
		s.log.Error("healthz: store", "err", err)
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
			s.log.Info("the gate timed out", "release", textsafe.Clean(r.ID), "decided", action)
			s.nudge(ctx, r, "gate timeout")
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
			s.log.Error("closing expired gates", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// loginBlocked says how long addr must wait before trying a token again (0: it may try now),
// and whether everyone must (the ceiling on all addresses was reached).
func (s *Server) loginBlocked(addr string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all.n >= maxLoginFailuresAll {
		if left := s.all.since.Add(loginWindow).Sub(s.cfg.Now()); left > 0 {
			return left, true
		}
		s.all = loginFailures{}
	}
	return s.addrBlocked(addr), false
}

func (s *Server) addrBlocked(addr string) time.Duration {
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
	if s.all.n == 0 || now.Sub(s.all.since) > loginWindow {
		s.all = loginFailures{since: now}
	}
	s.all.n++
}
