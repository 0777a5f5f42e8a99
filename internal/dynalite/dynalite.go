// Package dynalite starts dynalite, a DynamoDB-compatible server from npm, for tests that drive
// the DynamoDB store for real. ./test.sh installs it (npm install, into node_modules).
package dynalite

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/internal/examplefn"
)

// EnvEndpoint names a dynalite (or DynamoDB Local) already running, to use instead of starting one.
const EnvEndpoint = "AVIARY_TEST_DYNAMODB"

var (
	once     sync.Once
	endpoint string
	cmd      *exec.Cmd
	startErr error
)

// Endpoint returns the URL of a dynalite for the tests of this process, starting one on a free
// loopback port on first use; Stop ends it. Without dynalite installed, the test is skipped with
// the command that installs it.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(start)
	if startErr != nil {
		if os.IsNotExist(startErr) {
			t.Skipf("dynalite is not installed (%v): run ./test.sh, which installs it with npm", startErr)
		}
		t.Fatalf("start dynalite: %v", startErr)
	}
	return endpoint
}

func start() {
	if e := os.Getenv(EnvEndpoint); e != "" {
		endpoint = e
		return
	}
	root, err := examplefn.Root(".")
	if err != nil {
		startErr = err
		return
	}
	bin := filepath.Join(root, "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		startErr = err
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		startErr = err
		return
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := []string{"--port", fmt.Sprint(port), "--host", "127.0.0.1", "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
	cmd = exec.Command(bin, args...)
	if node, err := exec.LookPath("node"); err == nil {
		// dynalite throws (and exits) when a client goes away in the middle of sending a request
		// (`req.on('error', function (err) { throw err })`, ECONNRESET "aborted"): a test that
		// SIGKILLs an aviary process mid-write would take the shared server down with it, and every
		// test after it. Run its CLI under a handler that lets such a connection go; any other
		// uncaught error still ends it.
		cli := filepath.Join(root, "node_modules", "dynalite", "cli.js")
		cmd = exec.Command(node, append([]string{"-e", dynaliteWrapper, "--", cli}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		startErr = err
		return
	}
	endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(endpoint); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	startErr = fmt.Errorf("dynalite did not answer on %s", endpoint)
}

// Stop ends the dynalite this process started, if any. Call it from TestMain.
func Stop() {
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// dynaliteWrapper runs dynalite's CLI (process.argv[1], its arguments after it) ignoring a
// client's aborted request.
const dynaliteWrapper = `process.on('uncaughtException', function (e) {
  if (e && e.code === 'ECONNRESET') return
  console.error(e)
  process.exit(1)
})
require(process.argv[1])`
