// Command hello is the example Lambda function the sandbox's tests and demo deploy. It is built
// with aws-lambda-go and runs unchanged on AWS (provided.al2023) and in the sandbox.
//
// Two flavours: "good" answers every event; "bad" fails a share of invocations (main.badRate baked
// in at build time, default 1, or HELLO_ERROR_RATE). The bad flavour's bug is in the business
// path: health-check events ({"action":"echo"}) still pass, as they often do in real smoke tests.
// The flavour is baked in at build time (-ldflags "-X main.flavor=bad", which also gives the zip a
// different CodeSha256) and can be overridden with HELLO_FLAVOR.
//
// Events may ask for a behaviour, for exercising the platform: {"action":"sleep","ms":5000},
// {"action":"crash","code":3}, {"action":"panic"}, {"action":"echo", ...}, {"action":"log","text":"..."},
// {"action":"flaky","rate":0.01}, which fails that share of invocations in any flavour (a flaky
// dependency both versions share), and {"action":"env","text":"A,B"}, which answers those
// environment variables (the configuration a version carries; like echo, it passes in the bad
// flavour). An Aviary hook event ({"hook":"pre-traffic",...}) is answered
// {"status":"success"} by the good flavour and {"status":"failure"} by the bad one, so the
// function can stand in as a pre- or post-traffic hook.
package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

var (
	flavor  = "good"
	stamp   = ""  // -ldflags "-X main.stamp=..." marks a build, so that a rebuild is new code
	badRate = "1" // -ldflags "-X main.badRate=0.2": the share of invocations the bad flavour fails
)

func init() {
	// A stamp.txt packaged beside the bootstrap marks the zip too.
	if b, err := os.ReadFile(filepath.Join(os.Getenv("LAMBDA_TASK_ROOT"), "stamp.txt")); err == nil {
		stamp += strings.TrimSpace(string(b))
	}
}

type event struct {
	Action string         `json:"action"`
	MS     int            `json:"ms"`
	Code   int            `json:"code"`
	Text   string         `json:"text"`
	Rate   float64        `json:"rate"`
	Hook   string         `json:"hook"`
	Extra  map[string]any `json:"extra,omitempty"`
}

type response struct {
	Message   string            `json:"message"`
	Flavor    string            `json:"flavor"`
	Stamp     string            `json:"stamp,omitempty"`
	Function  string            `json:"function"`
	Version   string            `json:"version"`
	RequestID string            `json:"requestId"`
	Echo      map[string]any    `json:"echo,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Status    string            `json:"status,omitempty"`
	Reason    string            `json:"reason,omitempty"`
}

func handle(ctx context.Context, e event) (response, error) {
	f := flavor
	if v := os.Getenv("HELLO_FLAVOR"); v != "" {
		f = v
	}
	switch e.Action {
	case "sleep":
		// A hang: the context's deadline is ignored, as stuck code ignores it.
		time.Sleep(time.Duration(e.MS) * time.Millisecond)
	case "crash":
		fmt.Println("crashing on purpose")
		os.Exit(max(e.Code, 1))
	case "panic":
		panic("panicking on purpose")
	case "log":
		fmt.Println(e.Text)
	case "flaky":
		if rand.Float64() < e.Rate {
			return response{}, errors.New("flaky dependency: failing as both versions do")
		}
	}
	if e.Hook != "" {
		if f == "bad" {
			return response{Status: "failure", Reason: "the bad flavour fails its " + e.Hook + " checks", Flavor: f}, nil
		}
		return response{Status: "success", Flavor: f}, nil
	}
	if f == "bad" && e.Action != "echo" && e.Action != "env" {
		rate, _ := strconv.ParseFloat(badRate, 64)
		if v, err := strconv.ParseFloat(os.Getenv("HELLO_ERROR_RATE"), 64); err == nil {
			rate = v
		}
		if rand.Float64() < rate {
			return response{}, errors.New("bad flavour: failing on purpose")
		}
	}
	lc, _ := lambdacontext.FromContext(ctx)
	out := response{
		Message:  "hello from the " + f + " flavour",
		Flavor:   f,
		Stamp:    stamp,
		Function: lambdacontext.FunctionName,
		Version:  lambdacontext.FunctionVersion,
		Echo:     e.Extra,
	}
	if lc != nil {
		out.RequestID = lc.AwsRequestID
	}
	if e.Action == "env" {
		out.Env = map[string]string{}
		for _, k := range strings.Split(e.Text, ",") {
			out.Env[k] = os.Getenv(k)
		}
	}
	return out, nil
}

func main() { lambda.Start(handle) }
