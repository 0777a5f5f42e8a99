package sandbox_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// BenchmarkInvokeWeightedAlias measures warm Invoke throughput and latency through an alias that
// sends 10% of traffic to a second version, driven by the real SDK over HTTP on this machine
// (client, sandbox and function processes share its cores). Goal: at least 2,000 invocations/s.
//
//	go test ./sandbox -run '^$' -bench InvokeWeightedAlias -benchtime 10000x
func BenchmarkInvokeWeightedAlias(b *testing.B) {
	e := startB(b)
	c := context.Background()
	if _, err := e.lambda.CreateFunction(c, &lambda.CreateFunctionInput{FunctionName: aws.String("bench"), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String(role), Code: &lambdatypes.FunctionCode{ZipFile: zips.good}}); err != nil {
		b.Fatal(err)
	}
	v1 := publishB(b, e, "bench")
	if _, err := e.lambda.UpdateFunctionConfiguration(c, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("bench"),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"CANARY": "yes"}}}); err != nil {
		b.Fatal(err)
	}
	v2 := publishB(b, e, "bench")
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("bench"), Name: aws.String("live"), FunctionVersion: aws.String(v1),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v2: 0.1}}}); err != nil {
		b.Fatal(err)
	}
	in := &lambda.InvokeInput{FunctionName: aws.String("bench"), Qualifier: aws.String("live"), Payload: []byte(`{"extra":{"k":"v"}}`)}
	// Warm: start the environments the parallel run will use.
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := e.lambda.Invoke(c, in); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4) // 4 × GOMAXPROCS concurrent callers
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			out, err := e.lambda.Invoke(c, in)
			if err != nil {
				b.Error(err)
				return
			}
			if out.FunctionError != nil {
				b.Errorf("function error: %s", out.Payload)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "invocations/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func startB(b *testing.B) *env {
	b.Helper()
	srv, err := startSandbox(fast)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	e, err := clients(srv)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func publishB(b *testing.B, e *env, name string) string {
	b.Helper()
	out, err := e.lambda.PublishVersion(context.Background(), &lambda.PublishVersionInput{FunctionName: aws.String(name)})
	if err != nil {
		b.Fatal(err)
	}
	return aws.ToString(out.Version)
}
