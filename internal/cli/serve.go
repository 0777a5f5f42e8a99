package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/web"
)

type serveCmd struct {
	manifestFlags
	storeFlags
	clientFlags
	ControllerFunction string   `env:"AVIARY_CONTROLLER_FUNCTION" placeholder:"NAME" help:"The controller's function (name or ARN): after a decision on a release the controller drives, it is asked for a tick at once. Default: the manifest's controller of the release's environment, if any."`
	Addr               string   `default:"127.0.0.1:8080" placeholder:"HOST:PORT" help:"Where to listen (127.0.0.1:0 picks a free port)."`
	LinkSecretFile     string   `placeholder:"PATH" help:"Read the link secret from this file instead of AVIARY_LINK_SECRET."`
	UserHeader         string   `env:"AVIARY_USER_HEADER" placeholder:"HEADER" help:"The header an authenticating proxy sets to the signed-in user (such as X-Forwarded-User); it then says who decided, and the client address is read from X-Forwarded-For."`
	TrustedProxy       []string `env:"AVIARY_TRUSTED_PROXIES" sep:"," placeholder:"CIDR,..." help:"The addresses of the proxies in front of the server (such as 10.0.0.0/8,192.0.2.7): the user header and X-Forwarded-For are believed only from them. Without it, --user-header believes them from any client that connects."`
}

func (c *serveCmd) Help() string {
	return `Serves, over the same store the CLI uses:
  /                  releases, filtered by service, environment and phase
  /releases/ID       a release: functions and versions, weights, steps, health, gates, audit trail
  /gate/approve?t=…  the confirmation page a signed link opens (a GET never decides;
  /gate/rollback?t=… only the page's button, a POST with a CSRF token, does)
  /login             admin log in with AVIARY_ADMIN_TOKEN, for the approve and rollback buttons
  /metrics           Prometheus: releases started and ended (by outcome), live releases, step,
                     gate and release durations; counted from the whole store, so every server
                     on one store agrees, and counters never fall
  /logout            ends the admin session in the store, for every server sharing it
  /healthz           ok when the store answers

Environment:
  AVIARY_LINK_SECRET   the secret links are signed with (at least 16 bytes; the deploying side
                       signs with the same one); or --link-secret-file / AVIARY_LINK_SECRET_FILE.
                       Without one, links are off: the dashboard is read-only unless
                       AVIARY_ADMIN_TOKEN is set
  AVIARY_ADMIN_TOKEN   turns the dashboard's buttons on for people who hold it
  AVIARY_URL           this server's public address, for the links deploys print and send
  AVIARY_CONTROLLER_FUNCTION
                       the controller's function (--controller-function): a decision on a
                       release the controller drives asks it for a tick at once (a nudge;
                       default: the manifest's controller for the release's environment)

Put it behind TLS (a proxy, or a load balancer) when people reach it over a network. To run it
as a Lambda behind a function URL instead, see cmd/aviary-gate.`
}

func (c *serveCmd) Run(e *env) error {
	var secret []byte
	var err error
	if c.LinkSecretFile != "" {
		secret, err = links.ReadSecretFile(c.LinkSecretFile)
	} else {
		secret, err = links.SecretFromEnv()
	}
	if err != nil {
		return badInput("%v", err)
	}
	linksOff := secret == nil
	if linksOff {
		// Without a secret no link verifies: the dashboard is served read-only, and the signer
		// a throwaway one that keeps only this process's CSRF tokens and admin sessions.
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
	}
	signer, err := links.NewSigner(secret)
	if err != nil {
		return badInput("%v", err)
	}
	m, _ := manifestFlags{File: c.File}.load()
	st, err := c.storeFlags.open(e.ctx, m)
	if err != nil {
		return err
	}
	defer st.Close()
	admin := os.Getenv("AVIARY_ADMIN_TOKEN")
	if admin != "" && len(admin) < 12 {
		return badInput("AVIARY_ADMIN_TOKEN is %d characters; use at least 12 (anyone who guesses it can approve releases)", len(admin))
	}
	proxies, err := web.ParseProxies(c.TrustedProxy)
	if err != nil {
		return badInput("--trusted-proxy: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	h, err := web.New(web.Config{Store: st, Signer: signer, AdminToken: admin, UserHeader: c.UserHeader, TrustedProxies: proxies, PublicURL: dashboardURL(m), Log: log,
		Nudge: serveNudger(c.clientFlags, m, c.ControllerFunction)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return badInput("listen on %s: %v", c.Addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(e.stdout, "Aviary dashboard on http://%s (store %s)\n", ln.Addr(), c.storeFlags.url(m))
	switch {
	case linksOff && admin == "":
		fmt.Fprintln(e.stdout, "Links are off (no AVIARY_LINK_SECRET or --link-secret-file) and there is no AVIARY_ADMIN_TOKEN: the dashboard is read-only; decisions come from the CLI (aviary approve, aviary rollback).")
	case linksOff:
		fmt.Fprintln(e.stdout, "Links are off (no AVIARY_LINK_SECRET or --link-secret-file): approval links do not open here; decisions come from the admin buttons and the CLI.")
	case admin == "":
		fmt.Fprintln(e.stdout, "No AVIARY_ADMIN_TOKEN: the dashboard is read-only; decisions come from signed links and the CLI.")
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	// Gates whose deadline passed are decided here too, in case their driver died.
	go h.Run(e.ctx, 5*time.Second)
	select {
	case err := <-done:
		return err
	case <-e.ctx.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

type linkCmd struct {
	manifestFlags
	storeFlags
	outputFlags
	Release string        `arg:"" optional:"" help:"The release (default: the environment's latest)."`
	Env     string        `short:"e" placeholder:"ENV" help:"The environment's latest release."`
	TTL     time.Duration `default:"24h" help:"How long the links are valid (never past the gate's deadline)."`
}

func (c *linkCmd) Run(e *env) error {
	m, st, r, err := openRelease(e, c.File, c.storeFlags, c.Release, c.Env)
	if err != nil {
		return err
	}
	defer st.Close()
	kit, err := newGateKit(m, nil, st, e.stderr)
	if err != nil {
		return err
	}
	switch {
	case kit.signer == nil:
		return badInput("set AVIARY_LINK_SECRET (or AVIARY_LINK_SECRET_FILE) to the secret aviary serve uses")
	case kit.base == "":
		return badInput("the dashboard's address is unknown: set dashboard: in the manifest or AVIARY_URL")
	}
	g := r.OpenGate()
	if g == nil {
		return badInput("release %s is not waiting for a decision: it is %s", safe(r.ID), safe(r.Describe()))
	}
	expires := time.Now().Add(c.TTL)
	if !g.Deadline.IsZero() && g.Deadline.Before(expires) {
		expires = g.Deadline
	}
	approve := kit.signer.URL(kit.base, r.ID, len(r.Gates), release.Approve, expires)
	rollback := kit.signer.URL(kit.base, r.ID, len(r.Gates), release.DecideRollback, expires)
	if c.json() {
		return writeJSON(e.stdout, &linkOutput{Release: r.ID, Approve: approve, Rollback: rollback, Expires: expires})
	}
	fmt.Fprintf(e.stdout, "Release %s waits: %s\n  approve:   %s\n  roll back: %s\n  valid until %s\n", safe(r.ID), safe(r.Awaiting), approve, rollback, expires.Local().Format(time.DateTime))
	return nil
}
