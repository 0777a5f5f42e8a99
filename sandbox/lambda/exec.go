package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The executor runs functions as Lambda does: one process per execution environment, started from
// the version's unpacked zip with the Runtime API on its own loopback port, reused warm while idle,
// at most one invocation at a time per environment. How many run, and how fast new ones start, is
// exec_concurrency.go's.

// envSpec is everything an execution environment of one version needs to start.
type envSpec struct {
	Function string
	Version  string
	Runtime  string
	Handler  string
	CodeKey  string
	Timeout  time.Duration
	MemoryMB int
	Env      map[string]string
	LogGroup string
	// LogFormat ("Text" or "JSON") and the log levels are the version's LoggingConfig.
	LogFormat           string
	ApplicationLogLevel string
	SystemLogLevel      string

	// ImageConfig overrides an image function's entrypoint, command and working directory.
	ImageConfig *imageConfig
}

type poolKey struct {
	fn, version string
	gen         int64
}

type executor struct {
	s      *Service
	mu     sync.Mutex
	pools  map[poolKey]*pool
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup

	// Concurrency, under mu (exec_concurrency.go).
	running    map[string]int // in-flight invocations per function
	unreserved int            // in-flight invocations of functions without reserved concurrency
	buckets    map[string]*scaleBucket
	starting   int // environments starting, at most Config.MaxStarts
	// concFreed and slotFreed are closed and replaced when a unit of concurrency, or a start
	// slot, frees up.
	concFreed, slotFreed chan struct{}
}

func newExecutor(s *Service) *executor {
	e := &executor{s: s, pools: map[poolKey]*pool{}, running: map[string]int{}, buckets: map[string]*scaleBucket{},
		stop: make(chan struct{}), concFreed: make(chan struct{}), slotFreed: make(chan struct{})}
	e.wg.Add(1)
	go e.reapIdle()
	return e
}

// pool holds the environments of one version (of one generation, for $LATEST).
type pool struct {
	e    *executor
	key  poolKey
	spec envSpec
	mu   sync.Mutex
	idle []*execEnv
	all  map[*execEnv]bool // every live environment, idle or busy
	// waiters are invocations waiting, first come first served, for an environment freed.
	waiters []chan *execEnv
	retired bool
}

var errRetired = errors.New("the version's execution environments were retired")

func (e *executor) pool(key poolKey, spec envSpec) (*pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("sandbox is stopping")
	}
	if p, ok := e.pools[key]; ok {
		return p, nil
	}
	// A newer generation of $LATEST replaces the environments of older ones.
	for k, p := range e.pools {
		if k.fn == key.fn && k.version == key.version && k.gen < key.gen {
			delete(e.pools, k)
			go p.retire(false)
		}
	}
	p := &pool{e: e, key: key, spec: spec, all: map[*execEnv]bool{}}
	e.pools[key] = p
	return p, nil
}

// retire stops the environments of a function, or of one of its versions.
func (e *executor) retire(fn, version string) {
	e.mu.Lock()
	var gone []*pool
	for k, p := range e.pools {
		if k.fn == fn && (version == "" || k.version == version) {
			delete(e.pools, k)
			gone = append(gone, p)
		}
	}
	if version == "" {
		delete(e.buckets, fn)
	}
	e.mu.Unlock()
	for _, p := range gone {
		p.retire(false)
	}
}

func (e *executor) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	close(e.stop)
	pools := make([]*pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	e.pools = map[poolKey]*pool{}
	e.mu.Unlock()
	for _, p := range pools {
		p.retire(true)
	}
	e.wg.Wait()
}

func (e *executor) reapIdle() {
	defer e.wg.Done()
	t := time.NewTicker(time.Second * 15)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-e.s.cfg.IdleTimeout)
		e.mu.Lock()
		pools := make([]*pool, 0, len(e.pools))
		for _, p := range e.pools {
			pools = append(pools, p)
		}
		e.mu.Unlock()
		for _, p := range pools {
			p.mu.Lock()
			keep := p.idle[:0]
			var stale []*execEnv
			for _, env := range p.idle {
				if env.idleSince.Before(cutoff) {
					stale = append(stale, env)
					delete(p.all, env)
				} else {
					keep = append(keep, env)
				}
			}
			p.idle = keep
			p.mu.Unlock()
			for _, env := range stale {
				env.kill()
			}
		}
	}
}

// retire stops the pool's environments: the idle ones now, busy ones when their invocation ends —
// or now too if busy is set (the sandbox is stopping).
func (p *pool) retire(busy bool) {
	p.mu.Lock()
	p.retired = true
	victims := p.idle
	if busy {
		victims = nil
		for env := range p.all {
			victims = append(victims, env)
		}
	}
	for _, env := range p.idle {
		delete(p.all, env)
	}
	p.idle = nil
	for _, w := range p.waiters {
		w <- nil
	}
	p.waiters = nil
	p.mu.Unlock()
	for _, env := range victims {
		env.kill()
	}
}

// release returns an environment after an invocation, and its unit of concurrency: warm to the
// first invocation waiting for one, or to the idle list, if it is still alive.
func (p *pool) release(env *execEnv) {
	c := env.claim
	env.claim = claim{}
	if env.alive() {
		p.putIdle(env)
	} else {
		p.mu.Lock()
		delete(p.all, env)
		p.mu.Unlock()
		env.kill()
	}
	p.e.leave(&c)
}

// putIdle hands a live environment to the first waiter, or keeps it idle.
func (p *pool) putIdle(env *execEnv) {
	p.mu.Lock()
	if p.retired {
		delete(p.all, env)
		p.mu.Unlock()
		env.kill()
		return
	}
	if len(p.waiters) > 0 {
		// Sent under p.mu (the channel has room): a waiter giving up, which takes p.mu to leave
		// the line, then finds it in its channel.
		p.waiters[0] <- env
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		return
	}
	env.idleSince = time.Now()
	p.idle = append(p.idle, env)
	p.mu.Unlock()
}

// invocation is one event handed to an environment's runtime.
type invocation struct {
	id            string
	payload       []byte
	arn           string
	clientContext string
	deadline      time.Time
	done          chan runtimeResult
}

// runtimeResult is what the runtime answered for an invocation.
type runtimeResult struct {
	payload   []byte
	errorType string // the Lambda-Runtime-Function-Error-Type, or a platform error type
	isError   bool
	// fault marks an error Lambda detected itself (a timeout, a crash, a failed init, a response
	// too large) rather than one the function reported through /invocation/error.
	fault bool
}

// execEnv is one execution environment: a running bootstrap process and its Runtime API endpoint.
type execEnv struct {
	pool      *pool
	spec      envSpec
	claim     claim // the unit of concurrency of the invocation it runs
	cmd       *exec.Cmd
	srv       *http.Server
	ln        net.Listener
	next      chan *invocation
	dead      chan struct{}
	exitErr   error
	logs      *logCapture
	stream    string
	idleSince time.Time

	started  time.Time
	initOnce sync.Once
	initDone chan struct{}
	initDur  time.Duration
	initErr  *runtimeResult

	pmu sync.Mutex // guards the process while it starts

	mu  sync.Mutex
	cur *invocation
	// invocations counts invocations run; the first one reports the init duration.
	invocations int

	memMu   sync.Mutex
	memMB   int
	memRead time.Time
}

func startEnvironment(p *pool, spec envSpec) (*execEnv, error) {
	var dir, bootstrap, workDir string
	var args []string
	var img *imageRun
	if strings.HasPrefix(spec.CodeKey, imageKey) {
		run, err := p.e.s.startImage(spec)
		if err != nil {
			return nil, &startError{typ: "Runtime.InvalidEntrypoint", msg: err.Error()}
		}
		img, dir, bootstrap, workDir, args = &run, run.taskRoot, run.program, run.dir, run.args
	} else {
		var err error
		dir, err = p.e.s.code.unpack(spec.CodeKey)
		if err != nil {
			return nil, &startError{typ: "Runtime.Unknown", msg: err.Error()}
		}
		bootstrap, workDir = filepath.Join(dir, "bootstrap"), dir
		if _, err := os.Stat(bootstrap); err != nil {
			return nil, &startError{typ: "Runtime.InvalidEntrypoint", msg: "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, &startError{typ: "Runtime.Unknown", msg: err.Error()}
	}
	env := &execEnv{
		pool: p, spec: spec, ln: ln, started: time.Now(),
		next: make(chan *invocation), dead: make(chan struct{}), initDone: make(chan struct{}),
		stream: logStreamName(time.Now(), spec.Version),
	}
	r, w, err := os.Pipe()
	if err != nil {
		ln.Close()
		return nil, &startError{typ: "Runtime.Unknown", msg: err.Error()}
	}
	cmd := exec.Command(bootstrap, args...)
	cmd.Dir = workDir
	cmd.Env = env.environ(dir, ln.Addr().String(), img)
	cmd.Stdout, cmd.Stderr = w, w
	setProcessAttrs(cmd)
	env.cmd = cmd
	env.logs = newLogCapture(r)
	env.srv = &http.Server{Handler: env, ReadHeaderTimeout: 10 * time.Second}
	env.pmu.Lock()
	err = cmd.Start()
	env.pmu.Unlock()
	w.Close()
	if err != nil {
		ln.Close()
		return nil, &startError{typ: "Runtime.InvalidEntrypoint", msg: err.Error()}
	}
	go env.srv.Serve(ln)
	go func() {
		err := cmd.Wait()
		env.exitErr = err
		if err == nil {
			env.exitErr = errors.New("exit status 0")
		}
		close(env.dead)
		env.srv.Close()
	}()
	return env, nil
}

// writeTaskFile writes one file of an unpacked zip. An executable is opened, written and closed
// holding syscall.ForkLock for reading; every fork in this process holds it for writing. Otherwise
// a process forked meanwhile (another environment starting) would hold a copy of the descriptor,
// open for writing, until it execs, and the exec of this file — a bootstrap is started as soon as
// it is unpacked — would fail with ETXTBSY, "text file busy" (golang/go#22315).
func writeTaskFile(path string, data []byte, mode os.FileMode) error {
	if mode&0o111 != 0 {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
	}
	return os.WriteFile(path, data, mode)
}

// startError is an environment that could not start; Invoke reports it as a function error.
type startError struct{ typ, msg string }

func (e *startError) Error() string { return e.typ + ": " + e.msg }

func (env *execEnv) environ(dir, api string, img *imageRun) []string {
	s := env.pool.e.s
	vars := map[string]string{
		"PATH":                            "/usr/local/bin:/usr/bin:/bin:/opt/bin",
		"LANG":                            "en_US.UTF-8",
		"TZ":                              ":UTC",
		"LD_LIBRARY_PATH":                 "/lib64:/usr/lib64:" + dir + ":" + dir + "/lib:/opt/lib",
		"LAMBDA_TASK_ROOT":                dir,
		"LAMBDA_RUNTIME_DIR":              dir,
		"_HANDLER":                        env.spec.Handler,
		"AWS_LAMBDA_RUNTIME_API":          api,
		"AWS_LAMBDA_FUNCTION_NAME":        env.spec.Function,
		"AWS_LAMBDA_FUNCTION_VERSION":     env.spec.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(env.spec.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       env.spec.LogGroup,
		"AWS_LAMBDA_LOG_STREAM_NAME":      env.stream,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      s.cfg.Region,
		"AWS_DEFAULT_REGION":              s.cfg.Region,
		"AWS_ACCESS_KEY_ID":               "ASIASANDBOXFUNCTION0",
		"AWS_SECRET_ACCESS_KEY":           "sandbox",
		"AWS_SESSION_TOKEN":               "sandbox",
	}
	if img != nil {
		// The image's own variables, below the function's; paths in them name the image's
		// filesystem, so the sandbox's own (mapped into the unpacked image) stay.
		for _, kv := range img.env {
			if k, v, ok := strings.Cut(kv, "="); ok && !imagePathEnv[k] && !reservedEnv[k] {
				vars[k] = v
			}
		}
		vars["_HANDLER"] = img.handler
	}
	if s.cfg.BaseURL != "" {
		// Functions that call AWS reach the sandbox, as they would reach AWS from Lambda.
		vars["AWS_ENDPOINT_URL"] = s.cfg.BaseURL
	}
	for k, v := range env.spec.Env {
		if !reservedEnv[k] {
			vars[k] = v
		}
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

func (env *execEnv) alive() bool {
	select {
	case <-env.dead:
		return false
	default:
		return true
	}
}

// exited reports whether the environment's process is gone: its exit was seen, or the kernel
// already shows it a zombie or no longer has it. The second covers a process killed while idle
// (a crashed host) whose exit the Wait goroutine has not reaped yet — on a busy machine that takes
// a while, and such an environment must not take the next event.
func (env *execEnv) exited() bool {
	if !env.alive() {
		return true
	}
	env.pmu.Lock()
	proc := env.cmd.Process
	env.pmu.Unlock()
	if proc == nil {
		return false
	}
	// waitid's answer is trusted only when it says the process is gone: it has been seen to say
	// a killed environment still runs while /proc already shows it a zombie
	// (TestIdleEnvironmentKilled), so /proc has the last word.
	if gone, ok := processGone(proc.Pid); ok && gone {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", proc.Pid))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist) && hasProcfs()
	}
	// The state is the field after the command, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// hasProcfs says whether /proc shows processes (Linux): elsewhere exited trusts Wait alone.
var hasProcfs = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
})

func (env *execEnv) kill() {
	env.pmu.Lock()
	if env.cmd.Process != nil {
		killProcessGroup(env.cmd)
	}
	env.pmu.Unlock()
	env.srv.Close()
}

// ServeHTTP is the environment's Runtime API.
func (env *execEnv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/2018-06-01/runtime/"
	path := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		env.next0(w, r)
	case r.Method == http.MethodPost && path == "init/error":
		env.initError(w, r)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		rest := strings.TrimPrefix(path, "invocation/")
		id, kind, ok := strings.Cut(rest, "/")
		if !ok || (kind != "response" && kind != "error") {
			runtimeAPIError(w, http.StatusNotFound, "InvalidURL", "unknown Runtime API path")
			return
		}
		env.answer(w, r, id, kind == "error")
	default:
		runtimeAPIError(w, http.StatusNotFound, "InvalidURL", "unknown Runtime API path")
	}
}

func runtimeAPIError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}

func (env *execEnv) next0(w http.ResponseWriter, r *http.Request) {
	env.initOnce.Do(func() {
		env.initDur = time.Since(env.started)
		close(env.initDone)
		// A first reading of the peak memory: an invocation that kills the runtime cannot read it
		// afterwards. (The rusage of the exited process would not do: on Linux its ru_maxrss
		// counts the sandbox's own pages from before exec.)
		env.maxMemoryMB()
	})
	select {
	case inv := <-env.next:
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", inv.arn)
		h.Set("Lambda-Runtime-Trace-Id", traceID(inv.id))
		if inv.clientContext != "" {
			h.Set("Lambda-Runtime-Client-Context", inv.clientContext)
		}
		w.WriteHeader(http.StatusOK)
		w.Write(inv.payload)
	case <-r.Context().Done():
	case <-env.dead:
	}
}

func (env *execEnv) answer(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxResponseBytes+1))
	if err != nil {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	env.mu.Lock()
	inv := env.cur
	env.mu.Unlock()
	if inv == nil || inv.id != id {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	res := runtimeResult{payload: body}
	switch {
	case len(body) > maxResponseBytes:
		res = runtimeResult{isError: true, fault: true, errorType: "Function.ResponseSizeTooLarge",
			payload: errorPayload("Function.ResponseSizeTooLarge", fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", maxResponseBytes))}
		// The result is handed over before the runtime hears back: a runtime that exits as soon as
		// it has posted (aws-lambda-go after a panic) must not turn its answer into an exit error.
		inv.finish(res)
		runtimeAPIError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response too large")
		return
	case isError:
		res.isError = true
		res.errorType = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		if !json.Valid(body) || len(body) == 0 {
			typ := res.errorType
			if typ == "" {
				typ = "Unhandled"
			}
			res.payload = errorPayload(typ, string(body))
		}
	}
	inv.finish(res)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func (env *execEnv) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxResponseBytes))
	typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	if !json.Valid(body) || len(body) == 0 {
		body = errorPayload(typ, string(body))
	}
	res := &runtimeResult{isError: true, fault: true, errorType: typ, payload: body}
	env.mu.Lock()
	env.initErr = res
	env.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
	env.initOnce.Do(func() {
		env.initDur = time.Since(env.started)
		close(env.initDone)
	})
	// Lambda discards an environment whose init failed.
	go env.kill()
}

func (inv *invocation) finish(r runtimeResult) {
	select {
	case inv.done <- r:
	default:
	}
}

const maxResponseBytes = 6 * 1024 * 1024

func errorPayload(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{typ, msg})
	return b
}

func traceID(requestID string) string {
	now := time.Now().Unix()
	clean := strings.ReplaceAll(requestID, "-", "")
	if len(clean) > 24 {
		clean = clean[:24]
	}
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now, clean, clean[:16])
}

func logStreamName(t time.Time, version string) string {
	return fmt.Sprintf("%s/[%s]%s", t.UTC().Format("2006/01/02"), version, strings.ReplaceAll(newRevisionID(), "-", ""))
}

// runReport is what one invocation on an environment left behind: the runtime's answer, the
// init duration on a cold start (the init error, if init failed), when the invocation started and
// how long it ran, the output before it started (init output, and anything written between
// invocations) and during it, and the peak memory.
type runReport struct {
	res         runtimeResult
	initDur     time.Duration
	initFail    bool
	initTimeout bool
	start       time.Time
	dur         time.Duration
	pre, out    []logLine
	maxMemMB    int
	// undelivered: a warm environment's runtime had exited between invocations, before it asked
	// for this event; the event is run on a fresh environment instead, as Lambda does.
	undelivered bool
}

// run hands inv to the environment and waits for the runtime's answer, the deadline, or the
// process's death. A timed-out or dead environment is not reused.
func (env *execEnv) run(ctx context.Context, inv *invocation) (rep runReport) {
	env.mu.Lock()
	env.cur = inv
	env.invocations++
	first := env.invocations == 1
	env.mu.Unlock()
	defer func() {
		env.mu.Lock()
		env.cur = nil
		env.mu.Unlock()
	}()
	// finish collects the output and memory; kill first when the environment must not live on.
	finish := func(res runtimeResult, dur time.Duration, kill bool) runReport {
		rep.res, rep.dur = res, dur
		rep.maxMemMB = env.maxMemoryMB()
		if kill {
			env.kill()
			<-env.dead
		}
		rep.out = env.logs.take()
		return rep
	}

	// Init is not part of the function's timeout, but has its own 10-second limit, as on AWS.
	if first {
		initTimer := time.NewTimer(10 * time.Second)
		select {
		case <-env.initDone:
			initTimer.Stop()
		case <-env.dead:
			initTimer.Stop()
		case <-initTimer.C:
			rep.initDur, rep.initFail, rep.initTimeout, rep.start = 10*time.Second, true, true, time.Now()
			rep.pre = env.logs.take()
			return finish(runtimeResult{isError: true, fault: true, errorType: "Runtime.Unknown",
				payload: errorPayload("Runtime.Unknown", fmt.Sprintf("RequestId: %s Error: Init timed out after 10.00 seconds", inv.id))}, 0, true)
		}
		rep.initDur = time.Since(env.started)
		select {
		case <-env.initDone:
			rep.initDur = env.initDur
		default:
			// The runtime died before asking for its first event: its init failed.
			rep.initFail = true
		}
		env.mu.Lock()
		ie := env.initErr
		env.mu.Unlock()
		if ie != nil {
			<-env.dead
			rep.initFail, rep.start = true, time.Now()
			rep.pre = env.logs.take()
			return finish(*ie, 0, false)
		}
	}
	rep.pre = env.logs.take()
	timeout := env.spec.Timeout
	start := time.Now()
	rep.start = start
	inv.deadline = start.Add(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	if !first && env.exited() {
		// Killed while it waited for this event: it never had it, and a fresh one runs it.
		<-env.dead
		rep.undelivered = true
		return finish(env.exitResult(inv), 0, false)
	}
	select {
	case env.next <- inv:
	case <-env.dead:
		if !first {
			rep.undelivered = true
		}
		return finish(env.exitResult(inv), time.Since(start), false)
	case <-timer.C:
		return finish(timeoutResult(inv, timeout), timeout, true)
	case <-ctx.Done():
		return finish(runtimeResult{isError: true, fault: true, errorType: "Runtime.Unknown", payload: errorPayload("Runtime.Unknown", "the invocation was cancelled")}, time.Since(start), true)
	}
	select {
	case r := <-inv.done:
		return finish(r, time.Since(start), false)
	case <-env.dead:
		// The process may have answered just before exiting.
		select {
		case r := <-inv.done:
			return finish(r, time.Since(start), false)
		default:
		}
		return finish(env.exitResult(inv), time.Since(start), false)
	case <-timer.C:
		return finish(timeoutResult(inv, timeout), timeout, true)
	}
}

func timeoutResult(inv *invocation, timeout time.Duration) runtimeResult {
	return runtimeResult{isError: true, fault: true, errorType: "Sandbox.Timedout", payload: errorPayload("Sandbox.Timedout",
		fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, timeout.Seconds()))}
}

func (env *execEnv) exitResult(inv *invocation) runtimeResult {
	msg := "Runtime exited without providing a reason"
	if env.exitErr != nil {
		msg = "Runtime exited with error: " + env.exitErr.Error()
	}
	return runtimeResult{isError: true, fault: true, errorType: "Runtime.ExitError",
		payload: errorPayload("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: %s", inv.id, msg))}
}

// maxMemoryMB is the process's peak resident memory, for the REPORT line. The peak only grows, so
// a reading less than a second old is reused: reading /proc/PID/status costs the kernel more than
// the rest of a warm invocation, and at hundreds of invocations a second it showed in profiles.
func (env *execEnv) maxMemoryMB() int {
	env.memMu.Lock()
	defer env.memMu.Unlock()
	if time.Since(env.memRead) < time.Second {
		return env.memMB
	}
	env.pmu.Lock()
	p := env.cmd.Process
	env.pmu.Unlock()
	if p == nil {
		return env.memMB
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid))
	if err != nil {
		return env.memMB
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			env.memMB = max(env.memMB, (kb+1023)/1024)
			env.memRead = time.Now()
			break
		}
	}
	return env.memMB
}

// logCapture collects an environment's merged stdout and stderr as lines, each stamped with the
// time its first byte was read. Reads happen under mu, both in the background loop and in take,
// so take sees every byte written before it was called.
type logCapture struct {
	mu        sync.Mutex
	f         *os.File
	rc        syscall.RawConn
	lines     []logLine
	bytes     int // held in lines
	partial   []byte
	partialAt time.Time
	scratch   []byte // take's read buffer
}

// logLine is one line of output, with its newline if it had one.
type logLine struct {
	at   time.Time
	text string
}

const (
	// maxLogBytes bounds what an environment holds between two takes; the oldest lines go first.
	maxLogBytes = 1 << 20
	// maxLineBytes is where Lambda splits a long line into several log events.
	maxLineBytes = 256 << 10
)

func newLogCapture(f *os.File) *logCapture {
	l := &logCapture{f: f}
	rc, err := f.SyscallConn()
	if err != nil {
		go io.Copy(io.Discard, f)
		return l
	}
	l.rc = rc
	go l.loop()
	return l
}

func (l *logCapture) loop() {
	defer l.f.Close()
	chunk := make([]byte, 32<<10)
	for {
		eof := false
		err := l.rc.Read(func(fd uintptr) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			n, rerr := syscall.Read(int(fd), chunk)
			if n > 0 {
				l.append(chunk[:n], time.Now())
				return true
			}
			if rerr == syscall.EAGAIN {
				return false
			}
			if rerr == syscall.EINTR {
				return false
			}
			eof = true
			return true
		})
		if err != nil || eof {
			return
		}
	}
}

// append splits b into lines; the caller holds mu.
func (l *logCapture) append(b []byte, now time.Time) {
	for len(b) > 0 {
		if len(l.partial) == 0 {
			l.partialAt = now
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.partial = append(l.partial, b...)
			if len(l.partial) >= maxLineBytes {
				l.flush()
			}
			return
		}
		l.partial = append(l.partial, b[:i+1]...)
		b = b[i+1:]
		l.flush()
	}
}

// flush ends the partial line; the caller holds mu.
func (l *logCapture) flush() {
	for len(l.partial) > 0 {
		n := min(len(l.partial), maxLineBytes)
		l.lines = append(l.lines, logLine{at: l.partialAt, text: string(l.partial[:n])})
		l.bytes += n
		l.partial = l.partial[n:]
	}
	l.partial = l.partial[:0]
	for l.bytes > maxLogBytes && len(l.lines) > 1 {
		l.bytes -= len(l.lines[0].text)
		l.lines = l.lines[1:]
	}
}

// take drains what the pipe holds and returns every line captured since the last take, the last
// one even if it has no newline yet.
func (l *logCapture) take() []logLine {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rc != nil {
		if l.scratch == nil {
			l.scratch = make([]byte, 32<<10)
		}
		_ = l.rc.Control(func(fd uintptr) {
			for {
				n, err := syscall.Read(int(fd), l.scratch)
				if n <= 0 || err != nil {
					return
				}
				l.append(l.scratch[:n], time.Now())
			}
		})
	}
	l.flush()
	out := l.lines
	l.lines, l.bytes = nil, 0
	return out
}
