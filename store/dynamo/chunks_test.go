package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/dynamo"
	"github.com/aviary-deploy/aviary/store/storetest"
)

var at = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// crashing is the real client, except that while crash is set a release's head is never
// written: the process "dies" after writing a new body's chunks and before flipping the head.
type crashing struct {
	*dynamodb.Client
	crash atomic.Bool
}

var errCrash = errors.New("the process died here")

func (c *crashing) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if sk, ok := in.Item["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "REL" && c.crash.Load() {
		return nil, errCrash
	}
	return c.Client.PutItem(ctx, in, opts...)
}

func newTable(t *testing.T) (*dynamodb.Client, string) {
	db := client(t)
	table := fmt.Sprintf("aviary-chunks-%d", tables.Add(1))
	if _, err := dynamo.Init(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	return db, table
}

// items counts the release's items by kind (REL, BODY, EV...).
func items(t *testing.T, db *dynamodb.Client, table, id string) map[string]int {
	t.Helper()
	out, err := db.Query(context.Background(), &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk"), ProjectionExpression: aws.String("sk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "REL#" + id}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, it := range out.Items {
		sk := it["sk"].(*types.AttributeValueMemberS).Value
		kind, _, _ := strings.Cut(sk, "#")
		n[kind]++
	}
	return n
}

func setWeight(r *release.Release, w float64) {
	for i := range r.Functions {
		r.Functions[i].Weight = w
	}
}

// allAt says every function of r is at weight w: a release read whole, from one write.
func allAt(r *release.Release, n int, w float64) error {
	if len(r.Functions) != n {
		return fmt.Errorf("%d functions, want %d", len(r.Functions), n)
	}
	for _, fn := range r.Functions {
		if fn.Weight != w {
			return fmt.Errorf("%s at weight %v, want %v", fn.Name, fn.Weight, w)
		}
	}
	return nil
}

// A release too big even gzipped (5,000 functions) is kept in chunks: it round-trips, an
// update replaces its chunks (the old generation's are deleted), and a release written by the
// code before chunks (the JSON in the head's body) still reads.
func TestChunkedRelease(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t)
	s := dynamo.Open(db, table)
	const n = 5000
	r := storetest.LargeRelease("huge", n, at)
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	chunks := items(t, db, table, "huge")["BODY"]
	if chunks < 2 {
		t.Fatalf("a %d-function release is kept in %d chunks; the test wants it split", n, chunks)
	}
	setWeight(r, 0.5)
	if err := s.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRelease(ctx, "huge")
	if err != nil {
		t.Fatal(err)
	}
	if err := allAt(got, n, 0.5); err != nil || got.Revision != 2 {
		t.Fatalf("after an update: revision %d, %v", got.Revision, err)
	}
	if after := items(t, db, table, "huge")["BODY"]; after != chunks {
		t.Errorf("%d chunks after an update, want %d (the replaced generation deleted)", after, chunks)
	}
	list, err := s.ListReleases(ctx, store.Filter{Service: "shop", Environment: "prod"})
	if err != nil || len(list) != 1 || allAt(list[0], n, 0.5) != nil {
		t.Fatalf("list: %d releases, %v", len(list), err)
	}

	// As the code before chunks wrote a release.
	old := `{"id":"old","service":"shop","environment":"prod","phase":"promoted","functions":[{"name":"api","functionName":"shop-api-prod","artifactKey":"k.zip","codeSha256":"abc=","weight":1}]}`
	item := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "REL#old"}, "sk": &types.AttributeValueMemberS{Value: "REL"},
		"gpk": &types.AttributeValueMemberS{Value: "ENV#shop#prod"}, "gsk": &types.AttributeValueMemberS{Value: "00000000000000000001#old"},
		"service": &types.AttributeValueMemberS{Value: "shop"}, "environment": &types.AttributeValueMemberS{Value: "prod"},
		"phase": &types.AttributeValueMemberS{Value: "promoted"}, "revision": &types.AttributeValueMemberN{Value: "7"},
		"body": &types.AttributeValueMemberS{Value: old},
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	o, err := s.GetRelease(ctx, "old")
	if err != nil || o.Revision != 7 || o.Phase != release.Promoted || len(o.Functions) != 1 || o.Functions[0].Weight != 1 {
		t.Fatalf("a release in the old format: %+v, %v", o, err)
	}
	o.Phase = release.RolledBack
	if err := s.UpdateRelease(ctx, o); err != nil || o.Revision != 8 {
		t.Fatalf("updating a release in the old format: revision %d, %v", o.Revision, err)
	}
}

// Two processes update the same chunked release from the same revision: one write applies, the
// other is refused with ErrConflict, and the release read afterwards is the winner's, whole.
// The loser's chunks are not left behind.
func TestChunkedConflict(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t)
	const n = 5000
	if err := dynamo.Open(db, table).CreateRelease(ctx, storetest.LargeRelease("huge", n, at)); err != nil {
		t.Fatal(err)
	}
	chunks := items(t, db, table, "huge")["BODY"]
	weights := []float64{0.1, 0.5}
	errs := make([]error, len(weights))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, w := range weights {
		s := dynamo.Open(db, table) // one store per process
		r, err := s.GetRelease(ctx, "huge")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			setWeight(r, w)
			<-start
			errs[i] = s.UpdateRelease(ctx, r)
		}()
	}
	close(start)
	wg.Wait()
	var winner float64
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = weights[i]
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writes applied (%v), want exactly 1", wins, errs)
	}
	got, err := dynamo.Open(db, table).GetRelease(ctx, "huge")
	if err != nil {
		t.Fatal(err)
	}
	if err := allAt(got, n, winner); err != nil || got.Revision != 2 {
		t.Fatalf("after the race: revision %d, %v", got.Revision, err)
	}
	if after := items(t, db, table, "huge")["BODY"]; after != chunks {
		t.Errorf("%d chunks after the race, want %d (the loser's and the replaced ones deleted)", after, chunks)
	}
}

// A writer that dies after writing its chunks and before flipping the head leaves the release
// as it was, readable and updatable; readers running beside a stream of updates only ever read
// a release whole, from one write.
func TestChunkedCrashAndReaders(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t)
	const n = 5000
	api := &crashing{Client: db}
	s := dynamo.Open(api, table)
	r := storetest.LargeRelease("huge", n, at)
	setWeight(r, 0.1)
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	before := items(t, db, table, "huge")["BODY"]

	api.crash.Store(true)
	next := *r
	setWeight(&next, 0.5)
	if err := s.UpdateRelease(ctx, &next); !errors.Is(err, errCrash) {
		t.Fatalf("the crashing update: %v", err)
	}
	api.crash.Store(false)
	fresh := dynamo.Open(db, table) // another process, after the crash
	got, err := fresh.GetRelease(ctx, "huge")
	if err != nil {
		t.Fatal(err)
	}
	if err := allAt(got, n, 0.1); err != nil || got.Revision != 1 {
		t.Fatalf("after the crash: revision %d, %v", got.Revision, err)
	}

	// Readers beside a writer.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	readErrs := make(chan error, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reader := dynamo.Open(db, table)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := reader.GetRelease(ctx, "huge")
				if err == nil {
					err = allAt(r, n, float64(r.Revision)/10)
				}
				if err != nil {
					readErrs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	for rev := int64(1); rev < 6; rev++ {
		setWeight(got, float64(rev+1)/10) // weight = revision/10, which readers check
		if err := fresh.UpdateRelease(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(readErrs)
	for err := range readErrs {
		t.Errorf("a reader: %v", err)
	}
	if reads.Load() == 0 {
		t.Error("no read completed")
	}
	if after := items(t, db, table, "huge")["BODY"]; after < before {
		t.Errorf("%d chunks, want at least %d", after, before)
	}
}

// interleaving is the real client, calling after once, right after the first head it reads:
// another writer moving in between a reader's head and its chunks.
type interleaving struct {
	*dynamodb.Client
	once  sync.Once
	after func()
}

func (c *interleaving) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.Client.GetItem(ctx, in, opts...)
	if sk, ok := in.Key["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "REL" && err == nil {
		c.once.Do(c.after)
	}
	return out, err
}

// A reader that read the head just before a writer replaced it (and deleted the chunks it
// named) reads the new head and its chunks: the release as the writer left it, whole.
func TestChunkedReadAcrossAnUpdate(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t)
	const n = 5000
	writer := dynamo.Open(db, table)
	r := storetest.LargeRelease("huge", n, at)
	if err := writer.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	api := &interleaving{Client: db, after: func() {
		setWeight(r, 0.5)
		if err := writer.UpdateRelease(ctx, r); err != nil {
			t.Error(err)
		}
	}}
	got, err := dynamo.Open(api, table).GetRelease(ctx, "huge")
	if err != nil {
		t.Fatal(err)
	}
	if err := allAt(got, n, 0.5); err != nil || got.Revision != 2 {
		t.Fatalf("read across an update: revision %d, %v", got.Revision, err)
	}
}

// lostAnswer is the real client, except that while lose is set a release head's write is
// applied and then answered with an error, as when the answer is lost or the request's context
// ends after it was sent (the SDK's retry would then fail its condition against the write).
type lostAnswer struct {
	*dynamodb.Client
	lose atomic.Bool
}

func (c *lostAnswer) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := c.Client.PutItem(ctx, in, opts...)
	if sk, ok := in.Item["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "REL" && c.lose.Load() && err == nil {
		return nil, errors.New("the answer was lost")
	}
	return out, err
}

// A chunked release's head write that landed although its answer was an error is taken as
// written: its chunks are kept (deleting them would leave a head that nothing can read), and
// the release reads and updates on.
func TestChunkedWriteWhoseAnswerWasLost(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t)
	c := &lostAnswer{Client: db}
	s := dynamo.Open(c, table)
	const n = 5000
	r := storetest.LargeRelease("lost", n, at)
	c.lose.Store(true)
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatalf("a create that landed: %v", err)
	}
	setWeight(r, 0.5)
	if err := s.UpdateRelease(ctx, r); err != nil || r.Revision != 2 {
		t.Fatalf("an update that landed: revision %d, %v", r.Revision, err)
	}
	c.lose.Store(false)
	got, err := s.GetRelease(ctx, "lost")
	if err != nil {
		t.Fatalf("the release after writes whose answers were lost: %v", err)
	}
	if err := allAt(got, n, 0.5); err != nil || got.Revision != 2 {
		t.Fatalf("revision %d, %v", got.Revision, err)
	}
	setWeight(got, 1)
	if err := s.UpdateRelease(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetRelease(ctx, "lost"); err != nil || allAt(got, n, 1) != nil {
		t.Fatalf("the next update: %v", err)
	}
}
