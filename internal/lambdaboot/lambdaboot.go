// Package lambdaboot is what Aviary's own Lambda functions (the gate, the controller) share at
// start-up: opening the store their environment names, and reporting a start-up failure to
// Lambda as its own runtimes do.
package lambdaboot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/storeurl"
)

// OpenStore opens the store AVIARY_STORE names (url), as the CLI does; forms says which URLs the
// function accepts, for the error when none is set.
func OpenStore(ctx context.Context, url, appID, forms string) (store.Store, error) {
	if url == "" {
		return nil, errors.New("AVIARY_STORE is not set: set it to where releases are kept, " + forms)
	}
	st, err := storeurl.Open(ctx, url, appID)
	switch {
	case storeurl.IsBadURL(err):
		return nil, fmt.Errorf("AVIARY_STORE=%w", err)
	case err != nil:
		return nil, fmt.Errorf("AVIARY_STORE: %w", err)
	}
	return st, nil
}

// InitFailed reports err as the function's initialisation error through the Runtime API, as
// Lambda's own runtimes do, so that it is the error every invocation returns; then it exits.
// Outside Lambda it only prints it. name prefixes the message (the program's name).
func InitFailed(name string, err error) {
	msg := name + ": " + err.Error()
	fmt.Fprintln(os.Stderr, msg)
	if api := os.Getenv("AWS_LAMBDA_RUNTIME_API"); api != "" {
		const typ = "ConfigError"
		body, _ := json.Marshal(map[string]string{"errorMessage": msg, "errorType": typ})
		req, rerr := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
		if rerr == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Lambda-Runtime-Function-Error-Type", typ)
			c := &http.Client{Timeout: 5 * time.Second}
			if resp, perr := c.Do(req); perr != nil {
				fmt.Fprintln(os.Stderr, name+": report the init error:", perr)
			} else {
				resp.Body.Close()
			}
		}
	}
	os.Exit(1)
}
