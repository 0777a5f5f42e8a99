package sandbox_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// BenchmarkInvokeRate drives a steady open-loop rate of synchronous invocations (500/s for 20 s by
// default; AVIARY_BENCH_RATE and AVIARY_BENCH_SECONDS change them) through five weighted aliases of
// one function — alias i routes to version i+1 with 20% to version i+2, as five canaries would —
// over HTTP with the SDK, no retries, and prints where the time goes: client latency, the
// function's own time (its REPORT Duration), cold starts and their Init Duration, and the sandbox's
// overhead (client latency less the function's time) of warm invocations. The function sleeps a
// fixed 5 ms. Goal: no errors the sandbox causes, and a warm overhead p99 within 20 ms.
//
//	go test ./sandbox -run '^$' -bench InvokeRate -benchtime 1x
func BenchmarkInvokeRate(b *testing.B) {
	rate, seconds := envInt("AVIARY_BENCH_RATE", 500), envInt("AVIARY_BENCH_SECONDS", 20)
	e := startB(b)
	c := context.Background()
	if _, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("rate"), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String(role), Code: &lambdatypes.FunctionCode{ZipFile: zips.good}}); err != nil {
		b.Fatal(err)
	}
	var versions []string
	for i := range 6 {
		if _, err := e.lambda.UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("rate"),
			Environment: &lambdatypes.Environment{Variables: map[string]string{"RELEASE": strconv.Itoa(i)}}}); err != nil {
			b.Fatal(err)
		}
		versions = append(versions, publishB(b, e, "rate"))
	}
	var aliases []string
	for i := range 5 {
		name := "a" + strconv.Itoa(i)
		if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("rate"), Name: aws.String(name), FunctionVersion: aws.String(versions[i]),
			RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{versions[i+1]: 0.2}}}); err != nil {
			b.Fatal(err)
		}
		aliases = append(aliases, name)
	}
	// No retries, so that every failure counts; idle connections kept for the whole concurrency,
	// so that the SDK's default of 10 per host does not make each burst open new ones.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.MaxIdleConnsPerHost = 1024 })
	client := lambda.NewFromConfig(e.cfg, func(o *lambda.Options) { o.Retryer, o.HTTPClient = aws.NopRetryer{}, httpClient })

	for range b.N {
		total := rate * seconds
		results := make([]rateResult, total)
		interval := time.Second / time.Duration(rate)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range total {
			if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = invokeOnce(c, client, aliases[i%len(aliases)])
				results[i].at = time.Duration(i) * interval
			}()
		}
		wg.Wait()
		elapsed := time.Since(t0)
		fmt.Println(rateTable(results, elapsed))
	}
}

type rateResult struct {
	latency  time.Duration // as the client saw it
	duration time.Duration // the REPORT's Duration
	init     time.Duration // the REPORT's Init Duration on a cold start
	cold     bool
	cause    string // "" for success
	at       time.Duration
}

func invokeOnce(c context.Context, client *lambda.Client, alias string) rateResult {
	start := time.Now()
	out, err := client.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("rate"), Qualifier: aws.String(alias), LogType: lambdatypes.LogTypeTail,
		Payload: []byte(`{"action":"sleep","ms":5}`)})
	r := rateResult{latency: time.Since(start)}
	var tmr *lambdatypes.TooManyRequestsException
	switch {
	case errors.As(err, &tmr):
		r.cause = "throttle " + string(tmr.Reason)
		return r
	case err != nil:
		r.cause = "other: " + errorCode(err)
		if r.cause == "other: " {
			r.cause = "other: " + err.Error()
		}
		return r
	case out.FunctionError != nil:
		r.cause = "function error"
	}
	log, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.HasPrefix(line, "REPORT ") {
			continue
		}
		for _, f := range strings.Split(line, "\t") {
			if v, ok := strings.CutPrefix(f, "Init Duration: "); ok {
				r.init, r.cold = parseMs(v), true
			} else if v, ok := strings.CutPrefix(f, "Duration: "); ok {
				r.duration = parseMs(v)
			}
		}
	}
	return r
}

func parseMs(s string) time.Duration {
	f, _ := strconv.ParseFloat(strings.TrimSuffix(s, " ms"), 64)
	return time.Duration(f * float64(time.Millisecond))
}

func rateTable(results []rateResult, elapsed time.Duration) string {
	causes := map[string]int{}
	var lat, dur, inits, overhead, steady []time.Duration
	for _, r := range results {
		if r.cause != "" {
			causes[r.cause]++
			if r.cause != "function error" {
				continue
			}
		}
		lat = append(lat, r.latency)
		dur = append(dur, r.duration)
		if r.cold {
			inits = append(inits, r.init)
		} else {
			overhead = append(overhead, r.latency-r.duration)
			if r.at >= 5*time.Second {
				steady = append(steady, r.latency-r.duration)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invocations %d in %s (%.0f/s)\n", len(results), elapsed.Round(time.Millisecond), float64(len(results))/elapsed.Seconds())
	fmt.Fprintf(&b, "errors      %d\n", len(results)-len(lat)+causes["function error"])
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range causes {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "  %-58s %d\n", k, causes[k])
	}
	row := func(name string, d []time.Duration) {
		if len(d) == 0 {
			fmt.Fprintf(&b, "%-28s n=0\n", name)
			return
		}
		slices.Sort(d)
		fmt.Fprintf(&b, "%-28s n=%-6d p50 %8s  p99 %8s  max %8s\n", name, len(d), q(d, 0.5), q(d, 0.99), d[len(d)-1].Round(10*time.Microsecond))
	}
	row("client latency", lat)
	row("function Duration (REPORT)", dur)
	row("cold starts: Init Duration", inits)
	row("warm overhead (lat - Dur)", overhead)
	row("  after the first 5 s", steady)
	return b.String()
}

func q(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p))].Round(10 * time.Microsecond)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
